//! NumPy `.npy` files (format 1.0, little-endian float32, C order), written atomically.

use anyhow::{bail, Result};
use std::path::Path;

/// The bytes of a float32 `.npy` file holding `data` in `shape` (C order).
pub fn npy_bytes(data: &[f32], shape: &[usize]) -> Result<Vec<u8>> {
    if shape.iter().product::<usize>() != data.len() {
        bail!("npy: shape {shape:?} does not hold {} values", data.len());
    }
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let dims = match dims.len() {
        1 => format!("{},", dims[0]),
        _ => dims.join(", "),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + header length (2) + header + newline: a multiple of 64.
    while (header.len() + 11) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.reserve(data.len() * 4);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// Writes a float32 `.npy` file whole ([`crate::atomic`]), so a reader (or a killed run) never
/// sees half a file; an existing file is replaced only when `existing` allows it.
pub fn write_npy(
    path: &Path,
    data: &[f32],
    shape: &[usize],
    existing: crate::atomic::Existing,
) -> Result<()> {
    crate::atomic::write(path, existing, &npy_bytes(data, shape)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_and_data_follows() {
        let b = npy_bytes(&[1.0, -2.5], &[1, 2]).unwrap();
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (1, 2)"), "{header}");
        assert!(header.ends_with('\n'));
        assert_eq!(
            &b[10 + hlen..],
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
        let one = npy_bytes(&[0.0; 3], &[3]).unwrap();
        assert!(String::from_utf8_lossy(&one).contains("'shape': (3,)"));
        assert!(npy_bytes(&[0.0; 3], &[2, 2]).is_err());
    }
}
