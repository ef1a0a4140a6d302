//! Where a video comes from, and the one place FFmpeg is handed a name to open.
//!
//! An input is a file (opened through FFmpeg's `file` protocol only, whatever characters its
//! name holds, so `concat:a|b` or `subfile:...` never reach another protocol), a URL
//! (`scheme://...`, opened with a protocol allow-list), standard input (`pipe:`), or a capture
//! device named with an input format (`/dev/video0` with `v4l2`).
//!
//! Promises, enforced by FFmpeg's own `protocol_whitelist` and `format_whitelist` options on
//! every open (nested opens by a demuxer inherit them):
//!
//! - A file or `pipe:` is demuxed only by media demuxers ([`MEDIA_DEMUXERS`]), which read the
//!   one input and open nothing else. The demuxers that open other files, URLs or sockets
//!   named inside their input ([`LIST_DEMUXERS`]: HLS and DASH playlists, IMF compositions,
//!   ffconcat lists, SDP descriptions, ...) need [`Access::allow_playlists`], however they are
//!   reached: probed from the content or named by [`Access::input_format`].
//! - A URL may also use the network playlists and the demuxers its scheme names
//!   ([`URL_DEMUXERS`]); the rest of [`LIST_DEMUXERS`] (an SDP file served over HTTP would bind
//!   UDP sockets) needs [`Access::allow_playlists`] there too.
//! - A file reads through `file` only, `pipe:` through `pipe` only, and a URL through the
//!   network protocols of [`Access::protocols`] ([`DEFAULT_PROTOCOLS`] unless widened), so a
//!   hostile playlist fetched over the network cannot read local files.
//! - A capture device named with [`Access::input_format`] (`v4l2`) opens the device named.

use anyhow::{bail, Context as _, Result};
use ffmpeg_next::error::EINVAL;
use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Input as AvInput;
use ffmpeg_next::Dictionary as AvDictionary;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Protocols a URL may use, and the ones FFmpeg needs under them (RTSP carries RTP over UDP or
/// TCP, HTTPS and RTMPS use TLS, HLS may decrypt with `crypto`).
pub const DEFAULT_PROTOCOLS: &[&str] = &[
    "rtsp",
    "rtsps",
    "rtmp",
    "rtmps",
    "http",
    "https",
    "udp",
    "tcp",
    "srt",
    "rtp",
    "tls",
    "httpproxy",
    "crypto",
];

/// Demuxers of files and byte streams that hold media and open nothing but their one input
/// (FFmpeg names; those the linked FFmpeg lacks are ignored). `mov` opens external data
/// references only with its `enable_drefs` option, which is off; `image2` reads a frame-number
/// pattern only with its `pattern_type`, which is set to `none` on every open.
pub const MEDIA_DEMUXERS: &[&str] = &[
    "mov",
    "mp4",
    "matroska",
    "webm",
    "avi",
    "asf",
    "flv",
    "live_flv",
    "mpegts",
    "mpegtsraw",
    "mpeg",
    "mpegvideo",
    "m4v",
    "h261",
    "h263",
    "h264",
    "hevc",
    "av1",
    "obu",
    "vc1",
    "vc1test",
    "dirac",
    "dnxhd",
    "cavsvideo",
    "avs2",
    "avs3",
    "ivf",
    "nut",
    "nuv",
    "ogg",
    "mxf",
    "gxf",
    "lxf",
    "dv",
    "wtv",
    "rm",
    "smjpeg",
    "mjpeg",
    "mjpeg_2000",
    "mpjpeg",
    "yuv4mpegpipe",
    "rawvideo",
    "gif",
    "gif_pipe",
    "apng",
    "image2",
    "image2pipe",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "bmp_pipe",
    "tiff_pipe",
    "bink",
    "smk",
    "flic",
    "film_cpk",
    "swf",
    "thp",
    "roq",
    "ipmovie",
    "wc3movie",
    "xmv",
    "pva",
    "nsv",
    "mtv",
    "r3d",
    "cine",
    "dhav",
    "ifv",
    "kux",
    "vivo",
    "ty",
    "psxstr",
    "mv",
    "mxg",
    "bethsoftvid",
    "avs",
    "ipu",
    // Audio and subtitle elementary streams (an HLS or DASH rendition may be one).
    "aac",
    "ac3",
    "eac3",
    "mp3",
    "flac",
    "wav",
    "w64",
    "aiff",
    "caf",
    "amr",
    "au",
    "dts",
    "dtshd",
    "truehd",
    "mlp",
    "loas",
    "wv",
    "webvtt",
];

/// Demuxers that open other files, URLs or sockets named in their input (FFmpeg 5.1's
/// libavformat and libavdevice; README "Which sources vidcls opens" says what each opens):
/// only with [`Access::allow_playlists`], except those of [`URL_DEMUXERS`] for URLs.
pub const LIST_DEMUXERS: &[&str] = &[
    "hls", "dash", "imf", "concat", "sdp", "sap", "rtsp", "rtp", "vobsub", "mlv", "lavfi",
];

/// The list demuxers a URL may use without [`Access::allow_playlists`]: network playlists,
/// whose nested opens are held to the URL protocols, and the demuxers of the `rtsp:` and
/// `rtp:` schemes, which open the connections the URL itself names.
pub const URL_DEMUXERS: &[&str] = &["hls", "dash", "rtsp", "rtp"];

/// What opening inputs may do: a value each command's plan carries and passes to every open
/// (the default is the strict policy: no playlists, the network protocols of
/// [`DEFAULT_PROTOCOLS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// Let inputs use the demuxers that open what their input names ([`LIST_DEMUXERS`]).
    pub allow_playlists: bool,
    /// Protocols URLs may use (and FFmpeg may use under them).
    pub protocols: Vec<String>,
    /// An FFmpeg input format to use instead of probing (`v4l2` for a camera), like `ffmpeg -f`.
    pub input_format: Option<String>,
    /// Seconds a network read may stall before it fails.
    pub network_timeout: f64,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            allow_playlists: false,
            protocols: DEFAULT_PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            input_format: None,
            network_timeout: 10.0,
        }
    }
}

/// What an input names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine (a regular file, or a device when an input format is given).
    File(PathBuf),
    /// `scheme://...`, or `scheme:...` for a protocol FFmpeg knows.
    Url { url: String, scheme: String },
    /// `pipe:` or `pipe:0`: a byte stream on standard input.
    Stdin,
}

impl Location {
    /// Whether reading it can take as long as the sender likes (anything but a file).
    pub fn is_stream(&self) -> bool {
        !matches!(self, Location::File(_))
    }

    /// A network URL (reconnecting makes sense).
    pub fn is_network(&self) -> bool {
        matches!(self, Location::Url { .. })
    }
}

/// The URL scheme of `s` (`http` of `http://x`), when it starts with one followed by `:`.
fn scheme_of(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some(scheme)
}

/// Whether FFmpeg has a protocol of this name (input side).
fn is_ffmpeg_protocol(name: &str) -> bool {
    super::video::init_ffmpeg();
    let mut opaque = std::ptr::null_mut();
    loop {
        // SAFETY: iterating FFmpeg's static protocol table; each name is a static C string.
        let p = unsafe { ffi::avio_enum_protocols(&mut opaque, 0) };
        if p.is_null() {
            return false;
        }
        // SAFETY: non-null, NUL-terminated, static.
        if unsafe { CStr::from_ptr(p) }.to_bytes() == name.as_bytes() {
            return true;
        }
    }
}

/// What `input` names. An existing path is a file whatever it looks like; otherwise
/// `scheme://...` is a URL, `pipe:` standard input, and `name:...` a URL when FFmpeg has a
/// protocol `name` (so `concat:a|b` is refused as a protocol, not reported missing).
pub fn locate(input: &Path) -> Location {
    let Some(s) = input.to_str() else {
        return Location::File(input.to_path_buf());
    };
    if input.exists() {
        return Location::File(input.to_path_buf());
    }
    if s == "pipe:" || s == "pipe:0" {
        return Location::Stdin;
    }
    match scheme_of(s) {
        Some(scheme) if s[scheme.len()..].starts_with("://") || is_ffmpeg_protocol(scheme) => {
            Location::Url {
                url: s.to_string(),
                scheme: scheme.to_ascii_lowercase(),
            }
        }
        _ => Location::File(input.to_path_buf()),
    }
}

/// Whether `input` is read as a stream rather than a file (for listing inputs).
pub fn is_stream_name(input: &Path) -> bool {
    locate(input).is_stream()
}

/// The image-sequence demuxer (`image2`) reads the one file it is given, never the files a
/// frame-number pattern in its name (`IMG_%04d.png`) or a glob would expand to: a name must not
/// make FFmpeg read the files beside it. Other demuxers leave the option unused.
fn no_patterns(opts: &mut AvDictionary) {
    opts.set("pattern_type", "none");
}

/// FFmpeg's DASH and IMF demuxers parse their manifests with libxml2 and then call
/// `xmlCleanupParser`, which frees libxml2's process-wide state: two manifests opened at once by
/// two decode workers free it twice (a crash, seen with two DASH inputs). Opens that may use
/// those demuxers take turns; the rest never wait.
static XML_DEMUXERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This open's turn, when its demuxer whitelist lets a libxml2 demuxer in.
fn xml_turn(whitelist: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    whitelist
        .split(',')
        .any(|d| d == "dash" || d == "imf")
        .then(|| XML_DEMUXERS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Opens `input` for demuxing under `access`, and reads its stream information.
pub(crate) fn open_input(input: &Path, access: &Access) -> Result<AvInput> {
    let shown = input.display();
    let location = locate(input);
    let format = match &access.input_format {
        Some(name) => Some(named_format(input, name, &location, access)?),
        None => None,
    };
    let whitelist = format_whitelist(&location, access, format);
    let _turn = xml_turn(&whitelist);
    let mut opts = AvDictionary::new();
    opts.set("format_whitelist", &whitelist);
    no_patterns(&mut opts);
    let url: Vec<u8> = match &location {
        Location::File(path) => {
            if format.is_none() && !path.exists() {
                bail!("cannot open video {shown}: no such file");
            }
            opts.set("protocol_whitelist", "file");
            if format.is_some() && !path.is_file() {
                // A device: its input format opens it by name, not through a protocol.
                path.as_os_str().as_bytes().to_vec()
            } else {
                [b"file:".as_slice(), path.as_os_str().as_bytes()].concat()
            }
        }
        Location::Stdin => {
            opts.set("protocol_whitelist", "pipe");
            b"pipe:0".to_vec()
        }
        Location::Url { url, scheme } => {
            if !access.protocols.iter().any(|p| p == scheme) {
                bail!(
                    "cannot open {shown}: the {scheme}: protocol is not allowed (allowed: {}; \
                     --protocols widens the list)",
                    access.protocols.join(", ")
                );
            }
            opts.set("protocol_whitelist", &access.protocols.join(","));
            let micros = (access.network_timeout * 1e6) as i64;
            opts.set("rw_timeout", &micros.to_string());
            if scheme == "udp" {
                opts.set("timeout", &micros.to_string());
            }
            url.as_bytes().to_vec()
        }
    };
    let url = CString::new(url).with_context(|| format!("cannot open {shown}: NUL in the name"))?;
    super::video::init_ffmpeg();
    // SAFETY: the FFmpeg open sequence; `ps` is freed by avformat_open_input on failure and by
    // avformat_close_input (or the wrapper's Drop) after it; the dictionary is taken back and
    // freed whatever happens.
    unsafe {
        let mut ps = std::ptr::null_mut();
        let mut dict = opts.disown();
        let ret = ffi::avformat_open_input(
            &mut ps,
            url.as_ptr(),
            format.unwrap_or(std::ptr::null()),
            &mut dict,
        );
        drop(AvDictionary::own(dict));
        if ret < 0 {
            return Err(open_error(input, &location, access, ret));
        }
        let ret = ffi::avformat_find_stream_info(ps, std::ptr::null_mut());
        if ret < 0 {
            ffi::avformat_close_input(&mut ps);
            bail!(
                "cannot open video {shown}: {} (not a readable video?)",
                ffmpeg_next::Error::from(ret)
            );
        }
        Ok(AvInput::wrap(ps))
    }
}

/// A copy of standard input in a private temporary folder (mode 0700, random name), removed
/// when dropped: `predict pipe:` seeks and reopens like it does in any file (`watch` reads the
/// stream as it comes instead).
pub(crate) struct Spool {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spool {
    pub(crate) fn stdin() -> Result<Spool> {
        let dir = crate::atomic::private_dir("vidcls-stdin-")?;
        let path = dir.path().join("stdin");
        crate::interrupt::remove_on_interrupt(dir.path().to_path_buf());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file)
            .with_context(|| format!("cannot copy pipe: into {}", path.display()))?;
        Ok(Spool { path, _dir: dir })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The demuxers an input at `location` may use: the one rule of this module (see its docs).
fn allowed_demuxers(location: &Location, access: &Access) -> Vec<&'static str> {
    let mut names = MEDIA_DEMUXERS.to_vec();
    if access.allow_playlists {
        names.extend(LIST_DEMUXERS);
    } else if location.is_network() {
        names.extend(URL_DEMUXERS);
    }
    names
}

/// Whether a demuxer (FFmpeg's comma-separated name, as `mov,mp4,m4a`) may read an input at
/// `location`.
fn demuxer_allowed(name: &str, location: &Location, access: &Access) -> bool {
    let allowed = allowed_demuxers(location, access);
    name.split(',').any(|n| allowed.contains(&n))
}

/// Whether a demuxer (FFmpeg's comma-separated name) is one that opens what its input names.
fn opens_others(name: &str) -> bool {
    name.split(',').any(|n| LIST_DEMUXERS.contains(&n))
}

/// The `format_whitelist` of an open: the allowed demuxers, and the capture device named with
/// `--input-format` when it is one (checked by [`named_format`]).
fn format_whitelist(
    location: &Location,
    access: &Access,
    format: Option<*const ffi::AVInputFormat>,
) -> String {
    let mut names: Vec<&str> = allowed_demuxers(location, access);
    let device = format.filter(|f| is_device(*f)).map(format_name);
    names.extend(device.as_deref());
    names.join(",")
}

/// FFmpeg's name of an input format (comma-separated aliases, as `mov,mp4,m4a`).
fn format_name(format: *const ffi::AVInputFormat) -> String {
    // SAFETY: a static AVInputFormat from FFmpeg's tables, with a static name.
    unsafe { CStr::from_ptr((*format).name) }
        .to_string_lossy()
        .into_owned()
}

/// Whether an input format is a capture device of libavdevice, which opens the device it is
/// given by name and nothing named inside what it reads.
fn is_device(format: *const ffi::AVInputFormat) -> bool {
    use ffi::AVClassCategory as C;
    // SAFETY: a static AVInputFormat; its class, when it has one, is static too.
    let category = unsafe {
        let class = (*format).priv_class;
        if class.is_null() {
            return false;
        }
        (*class).category
    };
    matches!(
        category,
        C::AV_CLASS_CATEGORY_DEVICE_VIDEO_INPUT
            | C::AV_CLASS_CATEGORY_DEVICE_AUDIO_INPUT
            | C::AV_CLASS_CATEGORY_DEVICE_INPUT
    )
}

/// The input format `name` (`--input-format`), held to the same rule as a probed one (by
/// FFmpeg's own name for it, so `DASH` or an alias is no way round), or a capture device.
fn named_format(
    input: &Path,
    name: &str,
    location: &Location,
    access: &Access,
) -> Result<*const ffi::AVInputFormat> {
    let shown = input.display();
    let format = find_input_format(name).with_context(|| format!("cannot open video {shown}"))?;
    let found = format_name(format);
    if demuxer_allowed(&found, location, access) || (is_device(format) && !opens_others(&found)) {
        return Ok(format);
    }
    if opens_others(&found) {
        bail!(
            "cannot open video {shown}: input format {name} ({} demuxer) makes FFmpeg open \
             other files or connections named inside its input; refused (--allow-playlists \
             permits it)",
            found
        );
    }
    bail!(
        "cannot open video {shown}: input format {name} ({found} demuxer) is not one of the \
         media demuxers vidcls reads (README: Which sources vidcls opens)"
    )
}

/// The input format `name`, loading FFmpeg's capture devices first when the library is
/// installed.
fn find_input_format(name: &str) -> Result<*const ffi::AVInputFormat> {
    let c = CString::new(name).context("input format name")?;
    // SAFETY: a lookup in FFmpeg's static tables.
    let mut found = unsafe { ffi::av_find_input_format(c.as_ptr()) };
    if found.is_null() && load_devices() {
        // SAFETY: as above.
        found = unsafe { ffi::av_find_input_format(c.as_ptr()) };
    }
    if found.is_null() {
        bail!(
            "input format {name:?} is not in this FFmpeg ({}; `ffmpeg -formats` lists names)",
            if load_devices() {
                "capture devices from libavdevice are loaded"
            } else {
                "capture devices such as v4l2 need libavdevice, which is not installed: apt-get install libavdevice59"
            }
        );
    }
    Ok(found)
}

/// Registers libavdevice's capture devices (v4l2, x11grab, ...) with libavformat, loading the
/// library at run time so that vidcls needs it (and its audio and X11 dependencies) only for
/// cameras. Returns whether the devices are registered.
fn load_devices() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        // libavdevice's major version moves with libavformat's.
        // SAFETY: a plain version query.
        let major = unsafe { ffi::avformat_version() } >> 16;
        let name = format!("libavdevice.so.{major}");
        // SAFETY: loading FFmpeg's own device library (built against the libavformat already
        // loaded) and calling its registration function, which takes no arguments. The
        // library is never unloaded (its tables are referenced from libavformat).
        unsafe {
            let Ok(lib) = libloading::Library::new(&name) else {
                return false;
            };
            let register: Result<libloading::Symbol<unsafe extern "C" fn()>, _> =
                lib.get(b"avdevice_register_all\0");
            let Ok(register) = register else {
                return false;
            };
            register();
            std::mem::forget(lib);
        }
        true
    })
}

/// A message that says why an open failed, in terms of the input.
fn open_error(input: &Path, location: &Location, access: &Access, ret: i32) -> anyhow::Error {
    let shown = input.display();
    let err = ffmpeg_next::Error::from(ret);
    let invalid = err == ffmpeg_next::Error::Other { errno: EINVAL };
    if invalid && access.input_format.is_none() {
        let probed = match location {
            Location::File(path) => probed_format(path),
            Location::Url { .. } | Location::Stdin => None,
        };
        if let Some(name) = probed.filter(|n| !demuxer_allowed(n, location, access)) {
            if !opens_others(&name) {
                return anyhow::anyhow!(
                    "cannot open video {shown}: the {name} demuxer reads it, which is not one \
                     of the media demuxers vidcls reads"
                );
            }
            return anyhow::anyhow!(
                "cannot open video {shown}: it is {} ({name} demuxer), which makes FFmpeg \
                 open other files or connections named inside it; refused (--allow-playlists \
                 permits playlists and lists)",
                describe_demuxer(&name)
            );
        }
        if location.is_stream() {
            return anyhow::anyhow!(
                "cannot open video {shown}: not a media stream vidcls reads from {} (playlists, \
                 session descriptions and other non-media formats are refused; \
                 --allow-playlists permits playlists and lists)",
                if location.is_network() {
                    "a URL"
                } else {
                    "a pipe"
                }
            );
        }
    }
    anyhow::anyhow!("cannot open video {shown}: {err} (not a readable video?)")
}

/// What a refused demuxer reads, for messages.
fn describe_demuxer(name: &str) -> &'static str {
    let first = name.split(',').next().unwrap_or(name);
    match first {
        "hls" => "an HLS playlist",
        "dash" => "a DASH manifest",
        "imf" => "an IMF composition playlist",
        "concat" => "an ffconcat list",
        "sdp" => "an SDP session description",
        "vobsub" => "a VobSub index",
        "mlv" => "a Magic Lantern video",
        _ => "not a media file",
    }
}

/// The demuxer FFmpeg's probe picks for the start of a file (for error messages).
fn probed_format(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 16)
        .read_to_end(&mut head)
        .ok()?;
    // The probe wants AVPROBE_PADDING_SIZE zero bytes after the data.
    let len = head.len();
    head.resize(len + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let name = CString::new(path.as_os_str().as_bytes()).ok()?;
    let pd = ffi::AVProbeData {
        filename: name.as_ptr(),
        buf: head.as_mut_ptr(),
        buf_size: len as i32,
        mime_type: std::ptr::null(),
    };
    // SAFETY: pd points at live buffers for the duration of the call.
    let fmt = unsafe { ffi::av_probe_input_format(&pd, 1) };
    if fmt.is_null() {
        return None;
    }
    // SAFETY: a static AVInputFormat with a static name.
    Some(
        unsafe { CStr::from_ptr((*fmt).name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_located() {
        let url = |s: &str| matches!(locate(Path::new(s)), Location::Url { .. });
        assert!(url("http://127.0.0.1:8000/a.mp4"));
        assert!(url("udp://127.0.0.1:1234"));
        assert!(url("concat:a.mp4|b.mp4"));
        assert!(url("subfile:,,start,0,end,0,:/etc/passwd"));
        assert_eq!(locate(Path::new("pipe:")), Location::Stdin);
        assert_eq!(
            locate(Path::new("Cargo.toml")),
            Location::File("Cargo.toml".into())
        );
        // Not a protocol FFmpeg knows, no `//`: a (missing) file.
        assert_eq!(
            locate(Path::new("clip:1.mp4")),
            Location::File("clip:1.mp4".into())
        );
        assert_eq!(locate(Path::new("-")), Location::File("-".into()));
    }

    #[test]
    fn list_demuxers_only_when_allowed() {
        let file = Location::File("x".into());
        let url = locate(Path::new("http://127.0.0.1/x"));
        let strict = Access::default();
        assert!(demuxer_allowed("mov,mp4,m4a,3gp,3g2,mj2", &file, &strict));
        for name in LIST_DEMUXERS {
            assert!(!demuxer_allowed(name, &file, &strict), "{name}");
            assert!(!demuxer_allowed(name, &Location::Stdin, &strict), "{name}");
            let on_urls = URL_DEMUXERS.contains(name);
            assert_eq!(demuxer_allowed(name, &url, &strict), on_urls, "{name}");
        }
        let open = Access {
            allow_playlists: true,
            ..Access::default()
        };
        for name in LIST_DEMUXERS {
            assert!(demuxer_allowed(name, &file, &open) && demuxer_allowed(name, &url, &open));
        }
        assert!(!demuxer_allowed("s16le", &file, &open));
    }

    #[test]
    fn media_and_list_demuxers_are_apart() {
        for name in LIST_DEMUXERS {
            assert!(!MEDIA_DEMUXERS.contains(name), "{name} in both lists");
        }
        assert!(URL_DEMUXERS.iter().all(|n| LIST_DEMUXERS.contains(n)));
    }
}
