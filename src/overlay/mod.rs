//! Overlay stage: a video and timed captions in, a copy of the video with each frame's caption
//! drawn on it out (H.264 in MP4 through libx264, the audio stream copied).
//!
//! Promises: every decoded frame is filtered and encoded once with its own timestamp (no rate
//! conversion anywhere, so the copy has the input's frame count and timing); frames are turned
//! upright by transpose/flip filters (the copy carries no rotation); pixels change only inside
//! the caption band across the top of the frame, apart from what H.264 re-encoding changes. Text
//! is drawn by FFmpeg's drawtext filter (FreeType) with a TrueType font file (`graph.rs`).

mod graph;

pub use graph::band;

use anyhow::{bail, Context, Result};
use ffmpeg_next::codec::context::Context as AvCodecContext;
use ffmpeg_next::decoder::Video as AvDecoder;
use ffmpeg_next::filter::Graph;
use ffmpeg_next::format::context::Output as AvOutput;
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::media::Type as AvMediaType;
use ffmpeg_next::{codec, format, Dictionary, Packet, Rational};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Text shown from `start` (seconds from the video's first frame) until the next caption's.
#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    pub start: f64,
    pub text: String,
}

/// How captions look and how the copy is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// A TrueType font file.
    pub font: PathBuf,
    /// libx264's constant rate factor (lower: closer to the input, bigger).
    pub crf: u8,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub frames: u64,
    pub audio: bool,
}

/// Writes `output` (MP4): `input`'s video with the caption of each frame's time drawn on it
/// (`captions` in time order; each frame shows the last caption starting at or before it), and
/// its best audio stream copied. `rotation`: the clockwise rotation a player applies to
/// `input` (the decode stage reads it).
pub fn annotate(
    input: &Path,
    output: &Path,
    captions: &[Caption],
    rotation: i32,
    style: &Style,
    access: &crate::decode::Access,
) -> Result<Written> {
    ffmpeg_next::init().context("cannot initialise FFmpeg")?;
    let shown = input.display();
    let mut ictx = crate::decode::open_input(input, access)?;
    let mut octx = format::output_as(&output, "mp4")
        .with_context(|| format!("cannot create {}", output.display()))?;
    let ist = ictx
        .streams()
        .best(AvMediaType::Video)
        .with_context(|| format!("{shown}: no video stream"))?;
    let mut video = Lane::open(&ist, &mut octx, rotation, style, captions)?;
    let audio = copy_audio(&ictx, &mut octx)?;
    octx.write_header().with_context(|| {
        format!(
            "cannot write {} (an audio codec MP4 cannot hold?)",
            output.display()
        )
    })?;
    video.out_tb = octx.stream(0).expect("video stream").time_base();
    for (stream, mut packet) in ictx.packets() {
        if stream.index() == video.index {
            video.packet(&packet, &mut octx)?;
        } else if let Some(a) = &audio {
            if stream.index() == a.index {
                a.copy(&mut packet, &mut octx)?;
            }
        }
    }
    video.finish(&mut octx)?;
    octx.write_trailer().context("cannot finish the MP4 file")?;
    Ok(Written {
        frames: video.frames,
        audio: audio.is_some(),
    })
}

/// The audio stream copied as it is (stream 1 of the output).
struct AudioCopy {
    index: usize,
    in_tb: Rational,
}

impl AudioCopy {
    fn copy(&self, packet: &mut Packet, octx: &mut AvOutput) -> Result<()> {
        let out_tb = octx.stream(1).expect("audio stream").time_base();
        packet.rescale_ts(self.in_tb, out_tb);
        packet.set_position(-1);
        packet.set_stream(1);
        packet
            .write_interleaved(octx)
            .context("cannot write an audio packet")
    }
}

fn copy_audio(ictx: &format::context::Input, octx: &mut AvOutput) -> Result<Option<AudioCopy>> {
    let Some(ist) = ictx.streams().best(AvMediaType::Audio) else {
        return Ok(None);
    };
    let mut ost = octx
        .add_stream(ffmpeg_next::encoder::find(codec::Id::None))
        .context("cannot add the audio stream")?;
    ost.set_parameters(ist.parameters());
    // SAFETY: a plain field of the new stream's parameters; a tag from another container
    // may not fit MP4, and 0 lets the muxer choose.
    unsafe {
        (*ost.parameters().as_mut_ptr()).codec_tag = 0;
    }
    Ok(Some(AudioCopy {
        index: ist.index(),
        in_tb: ist.time_base(),
    }))
}

/// The video: decoder -> filter graph (built at the first frame) -> libx264 -> stream 0.
struct Lane<'a> {
    index: usize,
    decoder: AvDecoder,
    encoder: ffmpeg_next::encoder::video::Encoder,
    graph: Option<Graph>,
    in_tb: Rational,
    out_tb: Rational,
    rotation: i32,
    style: &'a Style,
    captions: &'a [Caption],
    frames: u64,
    /// Each input packet's duration by its presentation time, for the encoded packet of the
    /// same frame (so the last frame keeps its duration and the copy its length).
    durations: HashMap<i64, i64>,
}

impl<'a> Lane<'a> {
    fn open(
        ist: &format::stream::Stream,
        octx: &mut AvOutput,
        rotation: i32,
        style: &'a Style,
        captions: &'a [Caption],
    ) -> Result<Lane<'a>> {
        let decoder = AvCodecContext::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().video())
            .context("cannot open a decoder for the video stream")?;
        let (w, h) = graph::output_size(decoder.width(), decoder.height(), rotation);
        let encoder = open_encoder(ist, octx, (w, h), style.crf)?;
        Ok(Lane {
            index: ist.index(),
            decoder,
            encoder,
            graph: None,
            in_tb: ist.time_base(),
            out_tb: ist.time_base(),
            rotation,
            style,
            captions,
            frames: 0,
            durations: HashMap::new(),
        })
    }

    fn packet(&mut self, packet: &Packet, octx: &mut AvOutput) -> Result<()> {
        if let (Some(pts), d) = (packet.pts(), packet.duration()) {
            self.durations.insert(pts, d);
        }
        match self.decoder.send_packet(packet) {
            // A damaged packet: the decoder skips it, as players do.
            Err(ffmpeg_next::Error::InvalidData) => Ok(()),
            r => r.context("cannot decode the video"),
        }?;
        self.decoded(octx)
    }

    /// Filters and encodes every frame the decoder has ready.
    fn decoded(&mut self, octx: &mut AvOutput) -> Result<()> {
        let mut frame = AvFrame::empty();
        while self.decoder.receive_frame(&mut frame).is_ok() {
            let pts = frame.timestamp();
            frame.set_pts(pts);
            if self.graph.is_none() {
                self.graph = Some(self.build_graph(&frame)?);
            }
            let g = self.graph.as_mut().expect("built");
            g.get("in")
                .expect("source")
                .source()
                .add(&frame)
                .context("cannot filter a frame")?;
            self.filtered(octx)?;
        }
        Ok(())
    }

    fn build_graph(&self, first: &AvFrame) -> Result<Graph> {
        let start = first.pts().unwrap_or(0) as f64 * f64::from(self.in_tb);
        let sar = self.decoder.aspect_ratio();
        graph::build(
            first,
            self.in_tb,
            sar,
            self.rotation,
            self.captions,
            start,
            self.style,
        )
    }

    /// Encodes every frame the graph has ready.
    fn filtered(&mut self, octx: &mut AvOutput) -> Result<()> {
        let mut out = AvFrame::empty();
        loop {
            let Some(g) = self.graph.as_mut() else {
                return Ok(());
            };
            if g.get("out").expect("sink").sink().frame(&mut out).is_err() {
                return Ok(());
            }
            out.set_kind(ffmpeg_next::picture::Type::None);
            self.encoder
                .send_frame(&out)
                .context("cannot encode a frame")?;
            self.frames += 1;
            self.encoded(octx)?;
        }
    }

    fn encoded(&mut self, octx: &mut AvOutput) -> Result<()> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            if let Some(d) = packet.pts().and_then(|p| self.durations.remove(&p)) {
                packet.set_duration(d);
            }
            packet.set_stream(0);
            packet.rescale_ts(self.in_tb, self.out_tb);
            packet
                .write_interleaved(octx)
                .context("cannot write a video packet")?;
        }
        Ok(())
    }

    /// Drains the decoder, the graph and the encoder.
    fn finish(&mut self, octx: &mut AvOutput) -> Result<()> {
        self.decoder
            .send_eof()
            .context("cannot drain the decoder")?;
        self.decoded(octx)?;
        let Some(g) = self.graph.as_mut() else {
            bail!("no frame could be decoded");
        };
        g.get("in")
            .expect("source")
            .source()
            .flush()
            .context("cannot drain the filters")?;
        self.filtered(octx)?;
        self.encoder
            .send_eof()
            .context("cannot drain the encoder")?;
        self.encoded(octx)
    }
}

/// libx264 for `w x h` yuv420p frames in the input stream's time base, as output stream 0.
fn open_encoder(
    ist: &format::stream::Stream,
    octx: &mut AvOutput,
    (w, h): (u32, u32),
    crf: u8,
) -> Result<ffmpeg_next::encoder::video::Encoder> {
    let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
    let x264 = ffmpeg_next::encoder::find_by_name("libx264")
        .context("this FFmpeg has no libx264 encoder (Debian's libavcodec has it)")?;
    let mut ost = octx
        .add_stream(x264)
        .context("cannot add the video stream")?;
    ost.set_time_base(ist.time_base());
    let mut enc = AvCodecContext::new_with_codec(x264)
        .encoder()
        .video()
        .context("cannot set up libx264")?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(ffmpeg_next::format::Pixel::YUV420P);
    enc.set_time_base(ist.time_base());
    let rate = ist.avg_frame_rate();
    if rate.numerator() > 0 && rate.denominator() > 0 {
        enc.set_frame_rate(Some(rate));
    }
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    options.set("preset", "fast");
    options.set("crf", &crf.to_string());
    let enc = enc.open_with(options).context("cannot open libx264")?;
    ost.set_parameters(&enc);
    Ok(enc)
}
