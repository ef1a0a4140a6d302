//! Pictures as the stages hand them to each other: decode makes them, the model's
//! preprocessing and the report's thumbnails read them. Below all three, so neither reader
//! depends on the decoder to name what it reads.

/// One RGB24 frame, rows packed (`data.len() == width * height * 3`), upright.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    /// Presentation time in seconds relative to the stream's first frame.
    pub time: f64,
}

/// Takes the upright RGB24 rows of a picture as they are converted, top to bottom.
pub trait RowSink {
    /// Whether this sink reads upright row `y`; a band that no sink wants may be skipped.
    fn wants(&self, _y: u32) -> bool {
        true
    }
    /// Upright rows `first..first + n`, packed (`n * width * 3` bytes).
    fn rows(&mut self, first: u32, data: &[u8]);
}
