//! The filter chain that draws captions:
//!
//! ```text
//! buffer -> [transpose | hflip,vflip] -> format=yuv420p -> pad to even size
//!        -> drawbox (the caption band) -> drawtext per caption (enabled in its span) -> buffersink
//! ```
//!
//! Filters are created one by one with their options (`avfilter_graph_create_filter`) and
//! linked directly, so caption text passes through one level of option escaping only (every
//! character that is not a letter or digit gets a backslash), and drawtext's own `%{...}`
//! expansion is off: any label, quotes and colons included, is drawn as written.

use super::{Caption, Style};
use anyhow::{anyhow, Context, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::filter::{self, Graph};
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::Rational;

/// The copy's frame size: `w x h` turned upright, rounded up to even (yuv420p).
pub fn output_size(w: u32, h: u32, rotation: i32) -> (u32, u32) {
    let (w, h) = if rotation % 180 == 0 { (w, h) } else { (h, w) };
    (w.div_ceil(2) * 2, h.div_ceil(2) * 2)
}

/// Caption font size and band height for frames `h` pixels high.
pub fn band(h: u32) -> (u32, u32) {
    let font = (h / 16).clamp(10, 48);
    (font, font + 2 * (font / 4 + 2))
}

/// `s` as one value of a filter's option string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// When caption `i` of `n` shows, in the filter's clock (`start`: the first frame's time):
/// from its start (the first: from the beginning) until the next one's start (the last: to
/// the end), so every frame shows exactly one caption.
fn enable(captions: &[Caption], i: usize, start: f64) -> String {
    let from = (i > 0).then(|| format!("gte(t,{})", captions[i].start + start));
    let until = captions
        .get(i + 1)
        .map(|next| format!("lt(t,{})", next.start + start));
    match (from, until) {
        (Some(a), Some(b)) => format!("{a}*{b}"),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => "1".into(),
    }
}

/// The filters after the source, as (filter, options).
fn chain(
    captions: &[Caption],
    rotation: i32,
    (w, h): (u32, u32),
    start: f64,
    style: &Style,
) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = match rotation {
        90 => vec![("transpose", "dir=clock".into())],
        180 => vec![("hflip", String::new()), ("vflip", String::new())],
        270 => vec![("transpose", "dir=cclock".into())],
        _ => vec![],
    };
    let (_, oh) = output_size(w, h, rotation);
    let (font, band_h) = band(oh);
    f.push(("format", "pix_fmts=yuv420p".into()));
    f.push(("pad", "width=ceil(iw/2)*2:height=ceil(ih/2)*2".into()));
    f.push((
        "drawbox",
        format!("x=0:y=0:width=iw:height={band_h}:color=black@0.6:thickness=fill"),
    ));
    let font_file = escape(&style.font.to_string_lossy());
    for (i, c) in captions.iter().enumerate() {
        f.push((
            "drawtext",
            format!(
                "fontfile={font_file}:text={}:expansion=none:fontcolor=white:fontsize={font}:\
                 x={}:y={}:enable={}",
                escape(&c.text),
                font / 2,
                (band_h - font) / 2,
                escape(&enable(captions, i, start))
            ),
        ));
    }
    f
}

/// The graph for frames like `first` (time base `tb`, sample aspect `sar`).
pub fn build(
    first: &AvFrame,
    tb: Rational,
    sar: Rational,
    rotation: i32,
    captions: &[Caption],
    start: f64,
    style: &Style,
) -> Result<Graph> {
    let mut g = Graph::new();
    let sar = if sar.numerator() > 0 {
        sar
    } else {
        Rational(1, 1)
    };
    let source = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        first.width(),
        first.height(),
        ffi::AVPixelFormat::from(first.format()) as i32,
        tb.numerator(),
        tb.denominator(),
        sar.numerator(),
        sar.denominator()
    );
    let mut names = vec![add(&mut g, "buffer", "in", &source)?];
    let size = (first.width(), first.height());
    for (i, (name, options)) in chain(captions, rotation, size, start, style)
        .iter()
        .enumerate()
    {
        names.push(add(&mut g, name, &format!("f{i}"), options)?);
    }
    names.push(add(&mut g, "buffersink", "out", "")?);
    for pair in names.windows(2) {
        link(&mut g, &pair[0], &pair[1])?;
    }
    g.validate().context("cannot set up the caption filters")?;
    Ok(g)
}

/// Adds filter `kind` named `name`; returns the name.
fn add(g: &mut Graph, kind: &str, name: &str, options: &str) -> Result<String> {
    let f = filter::find(kind).ok_or_else(|| anyhow!("this FFmpeg has no {kind} filter"))?;
    g.add(&f, name, options)
        .with_context(|| format!("cannot set up the {kind} filter ({options})"))?;
    Ok(name.to_string())
}

/// Links the first output of filter `from` to the first input of `to`.
fn link(g: &mut Graph, from: &str, to: &str) -> Result<()> {
    let mut a = g.get(from).expect("added");
    let mut b = g.get(to).expect("added");
    // SAFETY: both contexts belong to `g`, which outlives the call; pad 0 exists on each.
    let r = unsafe { ffi::avfilter_link(a.as_mut_ptr(), 0, b.as_mut_ptr(), 0) };
    if r < 0 {
        return Err(anyhow!("cannot link the {from} and {to} filters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(start: f64, text: &str) -> Caption {
        Caption {
            start,
            text: text.into(),
        }
    }

    #[test]
    fn every_time_has_one_caption() {
        let c = [cap(0.0, "a"), cap(2.0, "b"), cap(4.0, "c")];
        assert_eq!(enable(&c, 0, 0.0), "lt(t,2)");
        assert_eq!(enable(&c, 1, 0.0), "gte(t,2)*lt(t,4)");
        assert_eq!(enable(&c, 2, 0.5), "gte(t,4.5)");
        assert_eq!(enable(&c[..1], 0, 0.0), "1");
    }

    #[test]
    fn escaping_leaves_letters_and_digits() {
        assert_eq!(escape("zoom_in 97%"), "zoom\\_in\\ 97\\%");
        assert_eq!(escape("a:b'c\\"), "a\\:b\\'c\\\\");
    }

    #[test]
    fn sizes_turn_upright_and_even() {
        assert_eq!(output_size(320, 240, 0), (320, 240));
        assert_eq!(output_size(320, 240, 90), (240, 320));
        assert_eq!(output_size(161, 121, 270), (122, 162));
        assert_eq!(band(120), (10, 18));
        assert_eq!(band(1080), (48, 76));
    }

    #[test]
    fn rotation_comes_first_then_drawing() {
        let style = Style {
            font: "/f.ttf".into(),
            crf: 18,
        };
        let names = |r| -> Vec<&str> {
            chain(&[cap(0.0, "x")], r, (64, 48), 0.0, &style)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(0), ["format", "pad", "drawbox", "drawtext"]);
        assert_eq!(names(90)[0], "transpose");
        assert_eq!(names(180)[..2], ["hflip", "vflip"]);
    }
}
