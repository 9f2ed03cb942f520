//! Formats other than JPEG, through the `image` crate: PNG, WebP, GIF (first
//! frame), BMP, TIFF. 16-bit samples become 8-bit.

use super::{check_pixels, ops, ColorMode, ImageError, ImageFormat, Pixels, SourceColor};
use image::{DynamicImage, ImageDecoder};
use std::io::Cursor;

fn to_image_format(f: ImageFormat) -> image::ImageFormat {
    match f {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
    }
}

fn map_err(format: ImageFormat, e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Unsupported(u) => ImageError::Unsupported(format!("{format}: {u}")),
        image::ImageError::Limits(l) => ImageError::Corrupt {
            format: format.name(),
            message: format!("over the decoder's memory limit: {l}"),
        },
        other => ImageError::Corrupt {
            format: format.name(),
            message: other.to_string(),
        },
    }
}

fn reader(data: &[u8], format: ImageFormat) -> image::ImageReader<Cursor<&[u8]>> {
    image::ImageReader::with_format(Cursor::new(data), to_image_format(format))
}

/// A PNG without its colour profile chunk (`iCCP`), which nothing here
/// uses: a few KB of deflate can claim a profile of hundreds of MB that the
/// decoder would inflate (up to its whole allocation limit) before the
/// first pixel. Other data, and other formats, as they are.
fn without_icc_profile(data: &[u8], format: ImageFormat) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    if format != ImageFormat::Png || !data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Cow::Borrowed(data);
    }
    let mut at = 8usize;
    while at + 8 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &data[at + 4..at + 8];
        let end = at.saturating_add(12).saturating_add(len).min(data.len());
        match kind {
            b"iCCP" => {
                let mut v = Vec::with_capacity(data.len() - (end - at));
                v.extend_from_slice(&data[..at]);
                v.extend_from_slice(&data[end..]);
                return Cow::Owned(v);
            }
            // the profile comes before the image data, or not at all
            b"IDAT" | b"IEND" => break,
            _ => at = end,
        }
    }
    Cow::Borrowed(data)
}

/// The source's colour layout: its stored one when the decoder converts
/// (a CMYK TIFF is decoded to RGB, but the colour policy is about CMYK).
fn source_color(c: image::ColorType, original: image::ExtendedColorType) -> SourceColor {
    use image::ExtendedColorType::{Cmyk16, Cmyk8};
    if matches!(original, Cmyk8 | Cmyk16) {
        return SourceColor::Cmyk;
    }
    match (c.has_color(), c.has_alpha()) {
        (false, false) => SourceColor::Gray,
        (false, true) => SourceColor::GrayAlpha,
        (true, false) => SourceColor::Rgb,
        (true, true) => SourceColor::Rgba,
    }
}

/// Width, height, channel count and colour layout from the header only.
pub fn header(data: &[u8], format: ImageFormat) -> Result<(u32, u32, u8, SourceColor), ImageError> {
    let data = without_icc_profile(data, format);
    let dec = reader(&data, format)
        .into_decoder()
        .map_err(|e| map_err(format, e))?;
    let (w, h) = dec.dimensions();
    let c = dec.color_type();
    Ok((
        w,
        h,
        c.channel_count(),
        source_color(c, dec.original_color_type()),
    ))
}

/// The EXIF orientation a non-JPEG file declares (1: none), from its header.
pub fn orientation(data: &[u8], format: ImageFormat) -> u8 {
    if format == ImageFormat::Webp {
        return super::exif::webp_orientation(data);
    }
    reader(&without_icc_profile(data, format), format)
        .into_decoder()
        .ok()
        .and_then(|mut d| d.orientation().ok())
        .map(|o| o.to_exif())
        .unwrap_or(1)
}

/// Decodes to upright 8-bit pixels with the channels the colour mode asks
/// for; also returns the source's colour layout.
pub fn decode(
    data: &[u8],
    format: ImageFormat,
    color: ColorMode,
    max_pixels: u64,
) -> Result<(Pixels, SourceColor, u8), ImageError> {
    let stripped = without_icc_profile(data, format);
    let mut r = reader(&stripped, format);
    let mut limits = image::Limits::default();
    // Room for the largest allowed image at 16 bits x 4 channels.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    r.limits(limits);
    let mut dec = r.into_decoder().map_err(|e| map_err(format, e))?;
    let (w, h) = dec.dimensions();
    check_pixels(w as u64, h as u64, max_pixels)?;
    let orientation = match format {
        // The image crate misses EXIF chunks that keep the "Exif\0\0" prefix.
        ImageFormat::Webp => super::exif::webp_orientation(data),
        _ => dec.orientation().map(|o| o.to_exif()).unwrap_or(1),
    };
    let source = source_color(dec.color_type(), dec.original_color_type());
    let img = DynamicImage::from_decoder(dec).map_err(|e| map_err(format, e))?;
    let has_color = img.color().has_color();
    let has_alpha = img.color().has_alpha();
    let (width, height) = (img.width(), img.height());
    let (channels, data) = match (color, has_color, has_alpha) {
        (ColorMode::Color, ..) => (3, img.into_rgb8().into_raw()),
        (ColorMode::Grayscale, false, _) => (1, img.into_luma8().into_raw()),
        (ColorMode::Grayscale, true, _) => {
            let rgb = img.into_rgb8().into_raw();
            (
                1,
                rgb.chunks_exact(3)
                    .map(|p| ops::luma(p[0], p[1], p[2]))
                    .collect(),
            )
        }
        (ColorMode::Unchanged, false, false) => (1, img.into_luma8().into_raw()),
        (ColorMode::Unchanged, false, true) => (2, img.into_luma_alpha8().into_raw()),
        (ColorMode::Unchanged, true, false) => (3, img.into_rgb8().into_raw()),
        (ColorMode::Unchanged, true, true) => (4, img.into_rgba8().into_raw()),
    };
    let px = Pixels {
        width,
        height,
        channels,
        data,
    };
    Ok((ops::orient(px, orientation), source, orientation))
}

/// PNG at zlib level 0..=9 (OpenCV's `IMWRITE_PNG_COMPRESSION`).
pub fn encode_png(px: &Pixels, compression: u8, out: &mut Vec<u8>) -> Result<(), ImageError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let ct = match compression.min(9) {
        0 => CompressionType::Uncompressed,
        n => CompressionType::Level(n),
    };
    let color = match px.channels {
        1 => image::ExtendedColorType::L8,
        2 => image::ExtendedColorType::La8,
        3 => image::ExtendedColorType::Rgb8,
        _ => image::ExtendedColorType::Rgba8,
    };
    PngEncoder::new_with_quality(&mut *out, ct, FilterType::Adaptive)
        .write_image(&px.data, px.width, px.height, color)
        .map_err(|e| ImageError::Codec(format!("PNG encode: {e}")))
}
