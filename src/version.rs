//! What a bug report needs first: versions of vidcls, libtorch and FFmpeg, and the devices seen.

use serde::Serialize;

/// `vidcls --version`: vidcls and the libtorch it was built against.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (libtorch ",
    env!("VIDCLS_LIBTORCH_VERSION"),
    ")"
);

#[derive(Debug, Serialize)]
pub struct Versions {
    pub vidcls: &'static str,
    pub libtorch: &'static str,
    pub libtorch_lib: &'static str,
    pub libavformat: String,
    pub libavcodec: String,
    pub libavutil: String,
    pub libswscale: String,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub torch_threads: i32,
}

fn dotted(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

pub fn collect() -> Versions {
    let cuda = tch::Cuda::is_available();
    Versions {
        vidcls: env!("CARGO_PKG_VERSION"),
        libtorch: env!("VIDCLS_LIBTORCH_VERSION"),
        libtorch_lib: env!("VIDCLS_LIBTORCH_LIB"),
        libavformat: dotted(ffmpeg_next::format::version()),
        libavcodec: dotted(ffmpeg_next::codec::version()),
        libavutil: dotted(ffmpeg_next::util::version()),
        libswscale: dotted(ffmpeg_next::software::scaling::version()),
        cuda_available: cuda,
        cuda_devices: if cuda { tch::Cuda::device_count() } else { 0 },
        cudnn_available: cuda && tch::Cuda::cudnn_is_available(),
        torch_threads: tch::get_num_threads(),
    }
}

impl std::fmt::Display for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "vidcls      {}", self.vidcls)?;
        writeln!(f, "libtorch    {} ({})", self.libtorch, self.libtorch_lib)?;
        writeln!(
            f,
            "ffmpeg      libavformat {}, libavcodec {}, libavutil {}, libswscale {}",
            self.libavformat, self.libavcodec, self.libavutil, self.libswscale
        )?;
        if self.cuda_available {
            writeln!(
                f,
                "cuda        available, {} device(s), cudnn {}",
                self.cuda_devices,
                if self.cudnn_available { "yes" } else { "no" }
            )?;
        } else {
            writeln!(f, "cuda        not available")?;
        }
        write!(f, "cpu threads {}", self.torch_threads)
    }
}
