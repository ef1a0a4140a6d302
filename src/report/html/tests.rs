use super::super::fixtures::{err, ok, render, seg};
use super::super::{Format, Record, Thumbnail, Window};
use super::*;

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

const HOSTILE: &str = "<script>alert(1)</script>\"'&.mp4";

#[test]
fn one_entry_per_input_errors_as_errors() {
    let page = render(
        Format::Html,
        &[
            vec![ok("a.mp4", None)],
            vec![err("b.mp4")],
            vec![ok("c.mp4", None)],
        ],
    );
    assert_eq!(count(&page, "<article id=\"v"), 3);
    assert_eq!(count(&page, "<article id=\"v1\" class=\"failed\">"), 1);
    assert!(page.contains("<p class=\"err\">error (decode): boom</p>"));
    assert!(page.contains("<p id=\"counts\">3 input(s): 2 classified, 1 failed</p>"));
    // The table: a row per input, the failed one with an error label and the lowest key.
    assert_eq!(count(&page, "<tr><td><a href=\"#v"), 3);
    assert!(page.contains("<td data-key=\"-1\"></td>"));
    assert!(page.contains("<td data-key=\"zoom_in\">zoom_in</td><td data-key=\"0.75\">75.00%</td>"));
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let mut r = ok(HOSTILE, None);
    if let Record::Ok(v) = &mut r {
        v.top_k[0].label = "<b>x</b>".into();
        v.warnings = vec!["<img src=x onerror=alert(2)>".into()];
        v.model = "<i>m</i>".into();
    }
    let mut e = err(HOSTILE);
    if let Record::Err(f) = &mut e {
        f.error = "</p><script>alert(3)</script>".into();
    }
    let page = render(Format::Html, &[vec![r], vec![e]]);
    assert_eq!(count(&page, "<script>"), 1, "only the page's own script");
    for raw in ["<b>x", "<img src=x", "<i>m", "alert(1)</script>\""] {
        assert!(!page.contains(raw), "{raw} unescaped");
    }
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;.mp4"));
    assert!(page.contains("&lt;/p&gt;&lt;script&gt;alert(3)"));
}

#[test]
fn self_contained_pictures_are_lazy_data_uris() {
    let mut r = ok("a.mp4", None);
    if let Record::Ok(v) = &mut r {
        v.thumbnails = vec![Thumbnail {
            time: 0.5,
            width: 4,
            height: 3,
            jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
        }];
    }
    let page = render(Format::Html, &[vec![r]]);
    assert!(page.contains(
        "<img loading=\"lazy\" decoding=\"async\" width=\"4\" height=\"3\" alt=\"frame at 0.50 s\" \
         title=\"0.50 s\" src=\"data:image/jpeg;base64,/9j/2Q==\">"
    ));
    for remote in ["http://", "https://", "src=\"//", "href=\"//", "url("] {
        assert!(!page.contains(remote), "{remote}");
    }
    assert!(page.contains("default-src 'none'; img-src data:;"));
}

#[test]
fn score_bars_follow_scores() {
    let page = render(Format::Html, &[vec![ok("a.mp4", None)]]);
    assert!(page.contains("<td>zoom_in</td><td><span class=\"bar\"><span style=\"width:75.0%\">"));
    assert!(page.contains("<td>zoom_out</td><td><span class=\"bar\"><span style=\"width:12.5%\">"));
}

#[test]
fn timeline_draws_windows_and_segments() {
    let windows: Vec<Record> = (0..3)
        .map(|i| {
            ok(
                "a.mp4",
                Some(Window::new(i as f64 * 2.0, i as f64 * 2.0 + 2.0)),
            )
        })
        .collect();
    let mut recs = windows;
    recs.push(seg("a.mp4", 0.0, 4.0, 0.9));
    let page = render(Format::Html, &[recs]);
    assert_eq!(count(&page, "<svg class=\"chart\""), 1);
    assert_eq!(count(&page, "<rect class=\"segment\""), 1);
    // Two classes plotted (zoom_in, zoom_out), one line each through three windows.
    assert_eq!(count(&page, "<polyline"), 2);
    assert!(
        page.contains("points=\"152.0,43.0 376.0,43.0 600.0,43.0\""),
        "{page}"
    );
    assert_eq!(count(&page, "<figure>"), 3);
    assert!(page.contains("<figcaption>2.0-4.0 s<br>zoom_in 75%</figcaption>"));
    assert!(page.contains("1 input(s): 1 classified, 0 failed; 3 window(s), 1 segment(s)"));
}

#[test]
fn an_empty_run_is_still_a_page() {
    let page = render(Format::Html, &[]);
    assert!(page.contains("0 input(s): 0 classified, 0 failed"));
    assert!(page.ends_with("</html>\n"));
}

#[test]
fn the_policy_allows_exactly_the_script() {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(SCRIPT.as_bytes());
    assert_eq!(SCRIPT_HASH, format!("sha256-{}", base64(&digest)));
}

#[test]
fn base64_matches_rfc4648() {
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(raw.as_bytes()), enc);
    }
}

#[test]
fn esc_covers_the_five() {
    assert_eq!(
        esc("<a href='x'>\"&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
    );
}
