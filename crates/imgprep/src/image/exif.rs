//! EXIF orientation, read from a JPEG's APP1 segment (or a bare TIFF/EXIF block).

/// EXIF orientation 1..=8 (1 = as stored). Anything unreadable counts as 1:
/// broken EXIF must never stop an image from being used.
pub type Orientation = u8;

/// Walks the JPEG markers up to the first scan and returns the orientation
/// from the first `Exif` APP1 segment that has one.
pub fn jpeg_orientation(data: &[u8]) -> Orientation {
    let mut i = match find_soi(data) {
        Some(p) => p + 2,
        None => return 1,
    };
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return 1;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return 1; // start of scan / end of image: no more metadata
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if len < 2 || i + 2 + len > data.len() {
            return 1;
        }
        let body = &data[i + 4..i + 2 + len];
        if marker == 0xE1 && body.len() > 6 && &body[..6] == b"Exif\0\0" {
            if let Some(o) = tiff_orientation(&body[6..]) {
                return o;
            }
        }
        i += 2 + len;
    }
    1
}

/// Position of the SOI marker: 0 for a normal file; a few bytes in for files
/// with junk before it.
pub fn find_soi(data: &[u8]) -> Option<usize> {
    let limit = data.len().min(64 * 1024);
    data[..limit]
        .windows(3)
        .position(|w| w == [0xFF, 0xD8, 0xFF])
}

/// Orientation from a WebP file's `EXIF` chunk.
pub fn webp_orientation(data: &[u8]) -> Orientation {
    let mut i = 12;
    while i + 8 <= data.len() {
        let fourcc = &data[i..i + 4];
        let size =
            u32::from_le_bytes([data[i + 4], data[i + 5], data[i + 6], data[i + 7]]) as usize;
        let body = &data[i + 8..(i + 8).saturating_add(size).min(data.len())];
        if fourcc == b"EXIF" {
            return tiff_orientation(body).unwrap_or(1);
        }
        i = i.saturating_add(8 + size + (size & 1));
    }
    1
}

/// Orientation tag (0x0112) of IFD0 in a TIFF-structured block (an
/// `Exif\0\0` prefix, which some writers keep, is skipped).
pub fn tiff_orientation(tiff: &[u8]) -> Option<Orientation> {
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    if tiff.len() < 8 {
        return None;
    }
    let le = match &tiff[..4] {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |p: usize| -> Option<u16> {
        let b = tiff.get(p..p + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |p: usize| -> Option<u32> {
        let b = tiff.get(p..p + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    for k in 0..count.min(512) {
        let e = ifd + 2 + 12 * k;
        if u16_at(e)? == 0x0112 {
            let typ = u16_at(e + 2)?;
            let v = match typ {
                3 => u16_at(e + 8)? as u32, // SHORT
                4 => u32_at(e + 8)?,        // LONG (seen in the wild)
                _ => return None,
            };
            return (1..=8).contains(&v).then_some(v as u8);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with_exif(tiff: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
        let len = (2 + 6 + tiff.len()) as u16;
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(b"Exif\0\0");
        v.extend_from_slice(tiff);
        v.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        v
    }

    fn tiff(le: bool, orientation: u16) -> Vec<u8> {
        let mut t = Vec::new();
        let w16 = |t: &mut Vec<u8>, v: u16| {
            t.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
        };
        let w32 = |t: &mut Vec<u8>, v: u32| {
            t.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
        };
        t.extend_from_slice(if le { b"II*\0" } else { b"MM\0*" });
        w32(&mut t, 8);
        w16(&mut t, 1);
        w16(&mut t, 0x0112);
        w16(&mut t, 3);
        w32(&mut t, 1);
        w16(&mut t, orientation);
        w16(&mut t, 0);
        w32(&mut t, 0);
        t
    }

    #[test]
    fn reads_both_byte_orders() {
        assert_eq!(jpeg_orientation(&jpeg_with_exif(&tiff(true, 6))), 6);
        assert_eq!(jpeg_orientation(&jpeg_with_exif(&tiff(false, 3))), 3);
    }

    #[test]
    fn broken_exif_means_no_rotation() {
        assert_eq!(jpeg_orientation(&jpeg_with_exif(&tiff(true, 9))), 1);
        let mut t = tiff(true, 6);
        t.truncate(12);
        assert_eq!(jpeg_orientation(&jpeg_with_exif(&t)), 1);
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF]), 1);
        assert_eq!(jpeg_orientation(b""), 1);
    }
}
