//! The image pipeline: decode (JPEG at reduced DCT scale when the target
//! allows), apply EXIF orientation, convert colour, centre-crop, resize with
//! SIMD, encode (JPEG or PNG) or pass the file through after a header check.
//! A YCbCr JPEG made into a JPEG with no rotation or colour change skips the
//! RGB round trip: its planes are cropped, resized and encoded as they are.
//!
//! One [`Processor`] per worker thread holds the reusable codec state.

pub mod budget;
pub mod exif;
pub mod geometry;
mod jpeg;
pub mod ops;
mod other;

use std::fmt;

pub use geometry::SourceGeometry;
pub use jpeg::{has_eoi, JpegColor, JpegDecoder, JpegEncoder, JpegHeader, JpegOut};

/// Default decompression-bomb guard: 2^28 pixels, about 268 megapixels
/// (the largest camera sensors, 200 MP, fit; 100 MP left out 108 MP phone
/// photos, which im2rec.py packs). A decode of that many RGB pixels takes
/// 805 MB.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 28;

/// Container formats we recognise by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Tiff => "tiff",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The formats MXNet's image decoder reads: OpenCV as built into the mxnet
/// wheel, without GIF or WebP (checked with `mx.image.imdecode`). Of TIFF
/// only some compressions: see [`mxnet_reads_tiff`].
pub const MXNET_DECODES: &[ImageFormat] = &[
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// Whether MXNet's decoder reads this TIFF (its first IFD is read, with the
/// `tiff` crate image-rs decodes with): uncompressed, LZW or PackBits
/// (checked with `mx.image.imdecode` on Pillow's TIFFs: Deflate and JPEG
/// compression fail, as does a JPEG-compressed CMYK file of the shared edge
/// cases). A file whose IFD cannot be read is not taken either.
pub fn mxnet_reads_tiff(tiff: impl std::io::Read + std::io::Seek) -> bool {
    let compression = tiff::decoder::Decoder::new(tiff).and_then(|mut d| {
        d.find_tag_unsigned::<u16>(tiff::tags::Tag::Compression)
            .map(|c| c.unwrap_or(1))
    });
    compression.is_ok_and(|c| matches!(c, 1 | 5 | 32773))
}

/// [`mxnet_reads_tiff`] of a TIFF file.
pub fn mxnet_reads_tiff_file(path: &std::path::Path) -> bool {
    std::fs::File::open(path).is_ok_and(|f| mxnet_reads_tiff(std::io::BufReader::new(f)))
}

/// Whether an image file holds more than one frame: an animated GIF (two
/// image descriptors or more), an animated WebP (the VP8X animation flag) or
/// an APNG (an `acTL` chunk before the image data). Decoding takes the
/// first frame; stored as it is, readers differ (TensorFlow gives a stack).
pub fn is_animated(data: &[u8]) -> bool {
    match sniff(data) {
        Some(ImageFormat::Webp) => {
            data.len() > 20 && &data[12..16] == b"VP8X" && data[20] & 0x02 != 0
        }
        Some(ImageFormat::Png) => {
            // chunks: length, type, data, CRC; acTL must come before IDAT
            let mut at = 8usize;
            while at + 8 <= data.len() {
                let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
                match &data[at + 4..at + 8] {
                    b"acTL" => return true,
                    b"IDAT" | b"IEND" => return false,
                    _ => {}
                }
                at = at.saturating_add(12).saturating_add(len);
            }
            false
        }
        Some(ImageFormat::Gif) => gif_frames(data) > 1,
        _ => false,
    }
}

/// Image descriptors in a GIF, counted by walking its blocks (2 at most:
/// enough to tell an animation).
fn gif_frames(data: &[u8]) -> usize {
    let mut at = 13usize;
    if data.len() < at {
        return 0;
    }
    let flags = data[10];
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 0x07) + 1);
    }
    // data sub-blocks: a length byte, then that many bytes, until 0
    let skip_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let n = *data.get(at)? as usize;
            at += 1 + n;
            if n == 0 {
                return Some(at);
            }
        }
    };
    let mut frames = 0;
    while let Some(&b) = data.get(at) {
        match b {
            0x2C => {
                frames += 1;
                if frames > 1 {
                    return frames;
                }
                let Some(&f) = data.get(at + 9) else { break };
                at += 10;
                if f & 0x80 != 0 {
                    at += 3 << ((f & 0x07) + 1);
                }
                at += 1; // LZW minimum code size
                match skip_blocks(at) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            0x21 => match skip_blocks(at + 2) {
                Some(next) => at = next,
                None => break,
            },
            _ => break,
        }
    }
    frames
}

/// Recognises a format from the first bytes. JPEGs with a little junk before
/// the SOI marker are recognised too (the decoder starts at the marker).
pub fn sniff(data: &[u8]) -> Option<ImageFormat> {
    let starts = |m: &[u8]| data.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some(ImageFormat::Tiff)
    } else if starts(b"BM") && data.len() > 26 {
        Some(ImageFormat::Bmp)
    } else if exif::find_soi(data).is_some() {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

/// Why an image could not be used. Each variant is a skip reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ImageError {
    #[error("empty file")]
    Empty,
    #[error("not a supported image format ({0})")]
    Unsupported(String),
    #[error("corrupt or truncated {format}: {message}")]
    Corrupt {
        format: &'static str,
        message: String,
    },
    #[error("{width}x{height} is {pixels} pixels, over the limit of {limit} (raise it with im2rec --max-pixels or transform.max_pixels in a recipe)")]
    TooLarge {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    /// The transform would make an image over the pixel limit (a 65500x1
    /// strip resized to a shorter edge of 256 is 16768000x256).
    #[error("resized it would be {width}x{height} = {pixels} pixels, over the limit of {limit} (raise it with im2rec --max-pixels or transform.max_pixels in a recipe)")]
    OutputTooLarge {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    #[error("{0}")]
    Codec(String),
}

impl ImageError {
    /// A short stable name for counting skips by reason.
    pub fn kind(&self) -> &'static str {
        match self {
            ImageError::Empty => "empty",
            ImageError::Unsupported(_) => "unsupported",
            ImageError::Corrupt { .. } => "corrupt",
            ImageError::TooLarge { .. } | ImageError::OutputTooLarge { .. } => "too-large",
            ImageError::Codec(_) => "codec",
        }
    }
}

/// The transform's output size, checked against the pixel limit before
/// anything of that size is allocated.
fn check_output(width: u32, height: u32, limit: u64) -> Result<(), ImageError> {
    let (width, height) = (width as u64, height as u64);
    let pixels = width.saturating_mul(height);
    if pixels > limit {
        return Err(ImageError::OutputTooLarge {
            width,
            height,
            pixels,
            limit,
        });
    }
    Ok(())
}

/// The pixel limit's checks of a decode, for an image made before (an
/// item cache entry): the source's stored size, then the output's when
/// the image was transformed. Same errors as the decode's, so a build
/// from the cache skips what a clean build skips.
pub fn check_limits(
    stored: (u32, u32),
    output: Option<(u32, u32)>,
    limit: u64,
) -> Result<(), ImageError> {
    check_pixels(stored.0 as u64, stored.1 as u64, limit)?;
    match output {
        Some((w, h)) => check_output(w, h, limit),
        None => Ok(()),
    }
}

fn check_pixels(width: u64, height: u64, limit: u64) -> Result<(), ImageError> {
    let pixels = width.saturating_mul(height);
    if pixels > limit {
        return Err(ImageError::TooLarge {
            width,
            height,
            pixels,
            limit,
        });
    }
    Ok(())
}

/// 8-bit interleaved pixels (1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

/// im2rec's `--color`: 1 colour, 0 grayscale, -1 unchanged (keeps alpha).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    #[default]
    Color,
    Grayscale,
    Unchanged,
}

/// How to size the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    #[default]
    None,
    /// Shorter edge to N, longer edge `long * N // short` (im2rec's `--resize`).
    ShorterEdge(u32),
    /// Exactly W x H (aspect ratio not kept).
    Exact(u32, u32),
    /// About this many pixels, aspect ratio kept (e.g. 224*224 -> 280x210 for 4:3).
    Area(u64),
}

impl Resize {
    /// Output size for an upright (and cropped) input of `w` x `h`.
    pub fn target(self, w: u32, h: u32) -> (u32, u32) {
        let (w64, h64) = (w as u64, h as u64);
        let (tw, th) = match self {
            Resize::None => (w64, h64),
            Resize::ShorterEdge(n) => {
                let n = n as u64;
                if h64 > w64 {
                    (n, h64 * n / w64)
                } else {
                    (w64 * n / h64, n)
                }
            }
            Resize::Exact(a, b) => (a as u64, b as u64),
            Resize::Area(px) => {
                let s = (px as f64 / (w64 * h64) as f64).sqrt();
                ((w as f64 * s).round() as u64, (h as f64 * s).round() as u64)
            }
        };
        (
            tw.clamp(1, u32::MAX as u64) as u32,
            th.clamp(1, u32::MAX as u64) as u32,
        )
    }
}

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JPEG at quality 1..=100.
    Jpeg { quality: u8 },
    /// PNG at zlib level 0..=9.
    Png { compression: u8 },
}

/// Revision of what this module makes of an image: the output bytes for a
/// given input and [`ImageSpec`]. It is part of every item cache key and
/// build fingerprint (see `build::transform_key`), so that a rebuild never
/// mixes images made before a change with images made after it. Bump it
/// with any change that alters output bytes: decoder or encoder settings,
/// the resize filter, colour conversion, orientation, or a new version of
/// libjpeg-turbo, `fast_image_resize` or `image` that decodes or encodes
/// differently. The test `tests::pixels_revision_pins_the_output` fails
/// when the bytes change and the revision did not.
pub const PIXELS_REVISION: u32 = 2;

/// Everything that decides what one output image looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub color: ColorMode,
    pub center_crop: bool,
    pub resize: Resize,
    pub encoding: Encoding,
    pub max_pixels: u64,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            color: ColorMode::Color,
            center_crop: false,
            resize: Resize::None,
            encoding: Encoding::Jpeg { quality: 95 },
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Upright decoded pixels, possibly at a reduced DCT scale.
#[derive(Debug)]
pub struct Decoded {
    pub pixels: Pixels,
    /// Full-resolution upright size.
    pub full_w: u32,
    pub full_h: u32,
    /// Decoded size / full size (`num/8` for JPEG).
    pub scale: f64,
    /// The source's colour layout.
    pub source: SourceColor,
    /// The EXIF orientation that was applied (1: none).
    pub orientation: u8,
    /// This decode's share of the memory budget (held until the pixels are
    /// done with).
    pub permit: Option<budget::Permit>,
}

/// The colour layout of a source image, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceColor {
    #[default]
    Rgb,
    Gray,
    /// Grayscale with alpha.
    GrayAlpha,
    /// RGB with alpha (also palettes with transparency).
    Rgba,
    /// CMYK or YCCK (JPEG).
    Cmyk,
}

impl SourceColor {
    /// A short name for skip reasons and counts.
    pub fn name(self) -> &'static str {
        match self {
            SourceColor::Rgb => "rgb",
            SourceColor::Gray => "grayscale",
            SourceColor::GrayAlpha => "grayscale+alpha",
            SourceColor::Rgba => "rgba",
            SourceColor::Cmyk => "cmyk",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Self> {
        [
            SourceColor::Rgb,
            SourceColor::Gray,
            SourceColor::GrayAlpha,
            SourceColor::Rgba,
            SourceColor::Cmyk,
        ]
        .get(c as usize)
        .copied()
    }

    fn of_jpeg(c: JpegColor) -> Self {
        match c {
            JpegColor::Gray => SourceColor::Gray,
            JpegColor::Color => SourceColor::Rgb,
            JpegColor::Cmyk => SourceColor::Cmyk,
        }
    }
}

/// What came out (or, for pass-through, what the header says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// Channels of the encoded image; 0 when only the header was read and it does not say.
    pub channels: u8,
    /// The source's colour layout (what the colour policy looks at).
    pub source: SourceColor,
}

/// A JPEG that ends without its end-of-image marker, with the marker put
/// back (a copy). Decoded as it is, libjpeg warns "Premature end of JPEG
/// file" whether the data is complete or cut short, and such a file was
/// skipped as truncated although it decodes whole (scraped and camera files
/// often lack the marker; im2rec.py packs them). With the marker, a file
/// whose image data is complete decodes without a warning, and one cut short
/// still meets the marker inside its data ("premature end of data
/// segment"): skipped, as before.
///
/// Only for a sequential JPEG whose components are all in one scan: a
/// progressive file (or one of several scans) cut at a scan's end decodes
/// the scans that arrived without a warning, a blurred or partial picture.
fn with_eoi(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let jpeg = sniff(data) == Some(ImageFormat::Jpeg);
    if !jpeg
        || data.ends_with(&[0xFF, 0xD9])
        || has_eoi(data)
        || !one_sequential_scan(&data[exif::find_soi(data).unwrap_or(0)..])
    {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut fixed = Vec::with_capacity(data.len() + 2);
    fixed.extend_from_slice(data);
    fixed.extend_from_slice(&[0xFF, 0xD9]);
    std::borrow::Cow::Owned(fixed)
}

/// Whether a JPEG (from its SOI) is baseline or extended sequential (SOF0,
/// SOF1) with all its components in its first scan, and no marker after that
/// scan's data begins (restart markers aside): one scan, so a file cut short
/// ends inside it.
fn one_sequential_scan(d: &[u8]) -> bool {
    let mut at = 2;
    let mut components = None;
    while at + 4 <= d.len() {
        if d[at] != 0xFF {
            return false;
        }
        let marker = d[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = u16::from_be_bytes([d[at + 2], d[at + 3]]) as usize;
        match marker {
            0xC0 | 0xC1 => components = d.get(at + 9).copied(),
            // progressive, lossless, arithmetic: not taken
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return false,
            0xDA => {
                if components.is_none() || d.get(at + 4).copied() != components {
                    return false;
                }
                // the scan's data: any marker but RSTn (and stuffed 00) ends it
                let data = d.get(at + 2 + len..).unwrap_or(&[]);
                return !data
                    .windows(2)
                    .any(|w| w[0] == 0xFF && !matches!(w[1], 0x00 | 0xD0..=0xD7 | 0xFF));
            }
            _ => {}
        }
        at += 2 + len;
    }
    false
}

/// Reads format and dimensions from the header, checks the pixel limit and
/// that the file is complete (JPEG EOI, PNG IEND), without decoding pixels.
/// This is the check used for `--pass-through`.
pub fn probe(data: &[u8], max_pixels: u64) -> Result<ImageInfo, ImageError> {
    probe_with(&mut JpegDecoder::new()?, data, max_pixels)
}

/// [`probe`] with a reusable JPEG decoder (the pass-through hot path).
pub fn probe_with(
    dec: &mut JpegDecoder,
    data: &[u8],
    max_pixels: u64,
) -> Result<ImageInfo, ImageError> {
    if data.is_empty() {
        return Err(ImageError::Empty);
    }
    let format = sniff(data).ok_or_else(|| ImageError::Unsupported(describe_unknown(data)))?;
    let (width, height, channels, source) = match format {
        ImageFormat::Jpeg => {
            let start = exif::find_soi(data).unwrap_or(0);
            let h = dec.read_header(&data[start..])?;
            if !has_eoi(data) {
                return Err(ImageError::Corrupt {
                    format: "JPEG",
                    message: "no end-of-image marker (file truncated?)".into(),
                });
            }
            let c = match h.color {
                JpegColor::Gray => 1,
                _ => 3,
            };
            (h.width, h.height, c, SourceColor::of_jpeg(h.color))
        }
        _ => other::header(data, format)?,
    };
    if format == ImageFormat::Png
        && !data[data.len().saturating_sub(12)..].starts_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D'])
    {
        return Err(ImageError::Corrupt {
            format: "PNG",
            message: "no IEND chunk at the end (file truncated?)".into(),
        });
    }
    check_pixels(width as u64, height as u64, max_pixels)?;
    Ok(ImageInfo {
        format,
        width,
        height,
        channels,
        source,
    })
}

/// The upright size and EXIF orientation of a source whose header was
/// probed (`info`, from [`probe`]): what the boxes of a pass-through item are
/// checked against.
pub fn source_geometry(data: &[u8], info: &ImageInfo) -> SourceGeometry {
    let orientation = match info.format {
        ImageFormat::Jpeg => exif::jpeg_orientation(data),
        f => other::orientation(data, f),
    };
    let (width, height) = ops::oriented_dims(info.width, info.height, orientation);
    SourceGeometry {
        width,
        height,
        orientation,
    }
}

fn describe_unknown(data: &[u8]) -> String {
    let head: Vec<String> = data.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised header bytes {}", head.join(" "))
}

/// Per-thread state: codec handles and scratch buffers.
pub struct Processor {
    jpeg_dec: JpegDecoder,
    jpeg_enc: Option<JpegEncoder>,
    resizer: fast_image_resize::Resizer,
    pool: Vec<Vec<u8>>,
    /// [`ops::resize_planes`]'s rows between its passes.
    plane_scratch: [Vec<u8>; 3],
}

impl Processor {
    pub fn new() -> Result<Self, ImageError> {
        Ok(Processor {
            jpeg_dec: JpegDecoder::new()?,
            jpeg_enc: None,
            resizer: fast_image_resize::Resizer::new(),
            pool: Vec::new(),
            plane_scratch: Default::default(),
        })
    }

    /// A pixel buffer from the per-thread pool: steady-state processing
    /// allocates (and page-faults) nothing.
    fn take_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 4 {
            self.pool.push(buf);
        }
    }

    /// Header-only check, as [`probe`].
    pub fn probe(&mut self, data: &[u8], max_pixels: u64) -> Result<ImageInfo, ImageError> {
        probe_with(&mut self.jpeg_dec, data, max_pixels)
    }

    /// Decodes, transforms and encodes one image, appending the encoded bytes
    /// to `out`.
    pub fn process(
        &mut self,
        data: &[u8],
        spec: &ImageSpec,
        out: &mut Vec<u8>,
    ) -> Result<ImageInfo, ImageError> {
        self.process_with_geometry(data, spec, out)
            .map(|(info, _)| info)
    }

    /// [`Processor::process`], also returning the source's upright size and
    /// orientation (what boxes are mapped with).
    pub fn process_with_geometry(
        &mut self,
        data: &[u8],
        spec: &ImageSpec,
        out: &mut Vec<u8>,
    ) -> Result<(ImageInfo, SourceGeometry), ImageError> {
        let data: &[u8] = &with_eoi(data);
        let mut decoded = match sniff(data) {
            Some(ImageFormat::Jpeg) => {
                let src = self.jpeg_source(data, spec)?;
                if let Some(quality) = planar_quality(&src, spec) {
                    return self.process_planar(&src, spec, quality, out);
                }
                self.decode_jpeg(src, spec)?
            }
            _ => self.decode(data, spec)?,
        };
        let source = decoded.source;
        let geometry = SourceGeometry {
            width: decoded.full_w,
            height: decoded.full_h,
            orientation: decoded.orientation,
        };
        // the budget share lives until the encoded bytes are out
        let _permit = decoded.permit.take();
        let pixels = self.transform(decoded, spec)?;
        let info = self.encode(pixels, spec.encoding, out)?;
        Ok((ImageInfo { source, ..info }, geometry))
    }

    /// Decodes to upright pixels in the channel layout the colour mode asks
    /// for. JPEGs are decoded at the smallest DCT scale that still covers the
    /// target size. Returns the pixels and the full-resolution upright size.
    pub fn decode(&mut self, data: &[u8], spec: &ImageSpec) -> Result<Decoded, ImageError> {
        if data.is_empty() {
            return Err(ImageError::Empty);
        }
        let data: &[u8] = &with_eoi(data);
        let format = sniff(data).ok_or_else(|| ImageError::Unsupported(describe_unknown(data)))?;
        if format != ImageFormat::Jpeg {
            // the header's size, as 16-bit RGBA at worst, before decoding
            let (w, h, _, _) = other::header(data, format)?;
            check_pixels(w as u64, h as u64, spec.max_pixels)?;
            let permit = budget::acquire(w as u64 * h as u64 * 8);
            let (pixels, source, orientation) =
                other::decode(data, format, spec.color, spec.max_pixels)?;
            let (full_w, full_h) = (pixels.width, pixels.height);
            return Ok(Decoded {
                pixels,
                full_w,
                full_h,
                scale: 1.0,
                source,
                orientation,
                permit: Some(permit),
            });
        }
        let src = self.jpeg_source(data, spec)?;
        self.decode_jpeg(src, spec)
    }

    /// A JPEG's header, read once for either decode path: its size checked
    /// against the pixel limit, and its upright size.
    fn jpeg_source<'a>(
        &mut self,
        data: &'a [u8],
        spec: &ImageSpec,
    ) -> Result<JpegSource<'a>, ImageError> {
        let data = &data[exif::find_soi(data).unwrap_or(0)..];
        let header = self.jpeg_dec.read_header(data)?;
        check_pixels(header.width as u64, header.height as u64, spec.max_pixels)?;
        let orientation = exif::jpeg_orientation(data);
        let (full_w, full_h) = ops::oriented_dims(header.width, header.height, orientation);
        Ok(JpegSource {
            data,
            header,
            orientation,
            full_w,
            full_h,
        })
    }

    /// [`Processor::decode`] of a JPEG whose header was read.
    fn decode_jpeg(&mut self, src: JpegSource, spec: &ImageSpec) -> Result<Decoded, ImageError> {
        let JpegSource {
            data,
            header,
            orientation,
            full_w,
            full_h,
        } = src;
        let (cw, ch) = crop_dims(full_w, full_h, spec.center_crop);
        let (tw, th) = spec.resize.target(cw, ch);
        check_output(tw, th, spec.max_pixels)?;
        let scale = dct_scale(cw, ch, tw, th);
        let out_fmt = match (spec.color, header.color) {
            (_, JpegColor::Cmyk) => JpegOut::Cmyk,
            (ColorMode::Grayscale, _) | (ColorMode::Unchanged, JpegColor::Gray) => JpegOut::Gray,
            _ => JpegOut::Rgb,
        };
        let permit = decode_budget(&header, scale, (tw, th));
        let mut buf = Vec::new();
        let (w, h) = self
            .jpeg_dec
            .decode(data, &header, scale, out_fmt, &mut buf)?;
        let mut px = if out_fmt == JpegOut::Cmyk {
            let mut rgb = Vec::new();
            ops::cmyk_to_rgb(&buf, &mut rgb);
            self.recycle(buf);
            let px = Pixels {
                width: w,
                height: h,
                channels: 3,
                data: rgb,
            };
            if spec.color == ColorMode::Grayscale {
                ops::to_channels(px, 1)
            } else {
                px
            }
        } else {
            Pixels {
                width: w,
                height: h,
                channels: out_fmt.channels(),
                data: buf,
            }
        };
        px = ops::orient(px, orientation);
        Ok(Decoded {
            pixels: px,
            full_w,
            full_h,
            scale: scale as f64 / 8.0,
            source: SourceColor::of_jpeg(header.color),
            orientation,
            permit: Some(permit),
        })
    }

    /// Centre crop and resize, computed on the full-resolution upright size so
    /// the output size does not depend on the DCT scale used.
    pub fn transform(&mut self, decoded: Decoded, spec: &ImageSpec) -> Result<Pixels, ImageError> {
        let Decoded {
            pixels: px,
            full_w,
            full_h,
            scale,
            permit: _permit,
            ..
        } = decoded;
        // the one mapping boxes use too
        let map = geometry::Mapping::new(full_w, full_h, Some(spec));
        let (cx, cy, cw, ch) = map.crop;
        let (tw, th) = map.target;
        check_output(tw, th, spec.max_pixels)?;
        let scaled = scale != 1.0;
        if !scaled && (tw, th) == (cw, ch) {
            return Ok(if spec.center_crop && (cw, ch) != (full_w, full_h) {
                ops::crop(&px, cx, cy, cw, ch)
            } else {
                px
            });
        }
        // Exact source rectangle in decoded pixels. With DCT scaling the last
        // row/column may hold only part of a source pixel (427 rows at 1/2 =
        // 213.5), so the scale factor is used, not the rounded-up size.
        let rect = ops::Rect {
            x: cx as f64 * scale,
            y: cy as f64 * scale,
            w: cw as f64 * scale,
            h: ch as f64 * scale,
        };
        let whole = rect.x == 0.0
            && rect.y == 0.0
            && rect.w == px.width as f64
            && rect.h == px.height as f64;
        if whole && (tw, th) == (px.width, px.height) {
            return Ok(px);
        }
        let buf = self.take_buf();
        let out = ops::resize(
            &mut self.resizer,
            &px,
            (!whole).then_some(rect),
            tw,
            th,
            buf,
        )?;
        self.recycle(px.data);
        Ok(out)
    }

    /// JPEG to JPEG through the file's own colour planes: decoded at the
    /// DCT scale [`Processor::decode`] would use, each plane cropped and
    /// resized on its own (luma to the target size, chroma to 4:2:0 at
    /// half of it), encoded from the planes. No chroma upsampling, no
    /// colour conversion either way, and half the pixels to resize that
    /// RGB has; the crop and the output size are the same as through RGB.
    fn process_planar(
        &mut self,
        src: &JpegSource,
        spec: &ImageSpec,
        quality: u8,
        out: &mut Vec<u8>,
    ) -> Result<(ImageInfo, SourceGeometry), ImageError> {
        let chroma = src.header.chroma.expect("planar_quality checked it");
        let map = geometry::Mapping::new(src.full_w, src.full_h, Some(spec));
        let (cx, cy, cw, ch) = map.crop;
        let (tw, th) = map.target;
        check_output(tw, th, spec.max_pixels)?;
        let scale = dct_scale(cw, ch, tw, th);
        // (the planes and their resize hold less than the RGB path's share)
        let _permit = decode_budget(&src.header, scale, (tw, th));
        let buf = self.take_buf();
        let planes = self
            .jpeg_dec
            .decode_planes(src.data, &src.header, scale, buf)?;
        let s = scale as f64 / 8.0;
        // the crop in decoded luma pixels (a last row or column may be part
        // of a source pixel: 427 rows at 1/2 = 213.5)
        let luma = ops::Rect {
            x: cx as f64 * s,
            y: cy as f64 * s,
            w: cw as f64 * s,
            h: ch as f64 * s,
        };
        let dims = jpeg::dims_420(tw, th);
        let mut resized = self.take_buf();
        resized.resize(dims.iter().map(|&(w, h)| w as usize * h as usize).sum(), 0);
        // luma, then both chroma planes together (same size in and out)
        let chroma_start = dims[0].0 as usize * dims[0].1 as usize;
        let (y_out, c_out) = resized.split_at_mut(chroma_start);
        let planes_in = [(0usize, 1usize), (1, 2)];
        for ((first, count), dst) in planes_in.into_iter().zip([y_out, c_out]) {
            // luma is resized to the picture's size (and padded after)
            let (dw, dh) = if first == 0 { (tw, th) } else { dims[first] };
            // luma samples per sample of this plane, in the source and out
            let (fx, fy) = if first == 0 { (1, 1) } else { chroma };
            let (ox, oy) = if first == 0 { (1, 1) } else { (2, 2) };
            // An output chroma plane of an odd size spans one luma column or
            // row past the picture, and its source rectangle as far past
            // the source's (into its repeated edge).
            let (pw, ph) = planes.dims[first];
            let rect = ops::Rect {
                x: luma.x / fx as f64,
                y: luma.y / fy as f64,
                w: luma.w * (ox * dw) as f64 / tw as f64 / fx as f64,
                h: luma.h * (oy * dh) as f64 / th as f64 / fy as f64,
            };
            // Luma with the RGB path's filter. The chroma planes come from
            // a reduced IDCT (4x4 of each 8x8 block at a 1/2 scale), already
            // smooth: Lanczos keeps more of them than Catmull-Rom did (with
            // it the JPEGs measured against a float Lanczos resize came out
            // as close as the RGB path's; with Catmull-Rom up to 0.9 dB
            // further in chroma on a real photo).
            let filter = match first {
                0 => fast_image_resize::FilterType::CatmullRom,
                _ => fast_image_resize::FilterType::Lanczos3,
            };
            ops::resize_planes(
                &mut self.resizer,
                planes.plane_run(first, count),
                (pw, ph),
                count,
                rect,
                (dw, dh),
                filter,
                dst,
                &mut self.plane_scratch,
            )?;
            if first == 0 {
                ops::pad_plane(dst, (tw, th), dims[0]);
            }
        }
        self.recycle(planes.data);
        let info = self.encode_yuv420(&resized, tw, th, quality, false, out)?;
        self.recycle(resized);
        Ok((
            ImageInfo {
                source: SourceColor::of_jpeg(src.header.color),
                ..info
            },
            SourceGeometry {
                width: src.full_w,
                height: src.full_h,
                orientation: src.orientation,
            },
        ))
    }

    /// Encodes pixels, appending to `out`.
    /// JPEG from full-range YUV 4:2:0 planes (video frames): see
    /// [`jpeg::JpegEncoder::encode_yuv420`].
    pub fn encode_yuv420(
        &mut self,
        planes: &[u8],
        width: u32,
        height: u32,
        quality: u8,
        gray: bool,
        out: &mut Vec<u8>,
    ) -> Result<ImageInfo, ImageError> {
        let enc = match &mut self.jpeg_enc {
            Some(e) if e.quality() == quality as i32 => e,
            slot => slot.insert(JpegEncoder::new(quality)?),
        };
        enc.encode_yuv420(planes, width, height, gray, out)?;
        Ok(ImageInfo {
            format: ImageFormat::Jpeg,
            width,
            height,
            channels: if gray { 1 } else { 3 },
            source: SourceColor::Rgb,
        })
    }

    pub fn encode(
        &mut self,
        px: Pixels,
        encoding: Encoding,
        out: &mut Vec<u8>,
    ) -> Result<ImageInfo, ImageError> {
        match encoding {
            Encoding::Jpeg { quality } => {
                // JPEG has no alpha: drop it, as OpenCV's encoder does.
                let px = match px.channels {
                    2 => ops::to_channels(px, 1),
                    4 => ops::to_channels(px, 3),
                    _ => px,
                };
                let enc = match &mut self.jpeg_enc {
                    Some(e) if e.quality() == quality as i32 => e,
                    slot => slot.insert(JpegEncoder::new(quality)?),
                };
                enc.encode(&px.data, px.width, px.height, px.channels, out)?;
                let info = ImageInfo {
                    format: ImageFormat::Jpeg,
                    width: px.width,
                    height: px.height,
                    channels: px.channels as u8,
                    source: SourceColor::Rgb,
                };
                self.recycle(px.data);
                Ok(info)
            }
            Encoding::Png { compression } => {
                other::encode_png(&px, compression, out)?;
                Ok(ImageInfo {
                    format: ImageFormat::Png,
                    width: px.width,
                    height: px.height,
                    channels: px.channels as u8,
                    source: SourceColor::Rgb,
                })
            }
        }
    }
}

/// A JPEG decode's share of the memory budget: at `scale`/8, the scaled
/// decode (CMYK: 4 bytes a pixel), its RGB conversion, and the `target`
/// output, held at once.
fn decode_budget(header: &JpegHeader, scale: u32, (tw, th): (u32, u32)) -> budget::Permit {
    let scaled = |v: u32| (v as u64 * scale as u64).div_ceil(8);
    budget::acquire(scaled(header.width) * scaled(header.height) * 7 + tw as u64 * th as u64 * 4)
}

/// A JPEG whose header was read (see [`Processor::jpeg_source`]).
struct JpegSource<'a> {
    /// From the SOI marker on.
    data: &'a [u8],
    header: JpegHeader,
    orientation: u8,
    /// Upright full-resolution size.
    full_w: u32,
    full_h: u32,
}

/// The JPEG quality to use when `src` can go JPEG to JPEG through its
/// colour planes ([`Processor::process_planar`]): a YCbCr file, upright as
/// stored, kept in colour, written as JPEG. Rotations, grayscale and other
/// colour models take the RGB path.
fn planar_quality(src: &JpegSource, spec: &ImageSpec) -> Option<u8> {
    match spec.encoding {
        Encoding::Jpeg { quality }
            if src.header.chroma.is_some()
                && src.orientation == 1
                && spec.color != ColorMode::Grayscale =>
        {
            Some(quality)
        }
        _ => None,
    }
}

fn crop_dims(w: u32, h: u32, center_crop: bool) -> (u32, u32) {
    if center_crop {
        let s = w.min(h);
        (s, s)
    } else {
        (w, h)
    }
}

/// Smallest `num/8` scale at which a `w` x `h` image still covers `tw` x `th`.
pub fn dct_scale(w: u32, h: u32, tw: u32, th: u32) -> u32 {
    (1..=8u32)
        .find(|&n| (w as u64 * n as u64) >= tw as u64 * 8 && (h as u64 * n as u64) >= th as u64 * 8)
        .unwrap_or(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn animations_are_told_from_single_frames() {
        use ::image::codecs::gif::GifEncoder;
        use ::image::{Frame, RgbaImage};
        let gif = |frames: usize| {
            let mut out = Vec::new();
            let mut e = GifEncoder::new(&mut out);
            for k in 0..frames {
                let img = RgbaImage::from_pixel(8, 6, ::image::Rgba([k as u8 * 80, 0, 0, 255]));
                e.encode_frame(Frame::new(img)).unwrap();
            }
            drop(e);
            out
        };
        assert!(!is_animated(&gif(1)));
        assert!(is_animated(&gif(2)));
        assert!(is_animated(&gif(3)));
        // WebP: the VP8X chunk's animation flag
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        assert!(!is_animated(&webp));
        webp[20] = 0x02;
        assert!(is_animated(&webp));
        // PNG: acTL before IDAT
        let chunk = |kind: &[u8], body: &[u8]| {
            let mut c = (body.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(body);
            c.extend_from_slice(&[0; 4]);
            c
        };
        let png = |extra: &[u8]| {
            let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
            p.extend(chunk(b"IHDR", &[0; 13]));
            p.extend_from_slice(extra);
            p.extend(chunk(b"IDAT", &[0; 4]));
            p.extend(chunk(b"IEND", &[]));
            p
        };
        assert!(!is_animated(&png(&[])));
        assert!(is_animated(&png(&chunk(b"acTL", &[0; 8]))));
        // cut files are not animations, and do not panic
        let g = gif(2);
        for n in 0..g.len() {
            let _ = is_animated(&g[..n]);
        }
    }

    #[test]
    fn resize_targets_match_im2rec() {
        assert_eq!(Resize::ShorterEdge(210).target(640, 480), (280, 210));
        assert_eq!(Resize::ShorterEdge(210).target(480, 640), (210, 280));
        assert_eq!(Resize::ShorterEdge(256).target(333, 500), (256, 384));
        assert_eq!(Resize::ShorterEdge(100).target(50, 50), (100, 100));
        assert_eq!(Resize::Exact(224, 224).target(640, 480), (224, 224));
        assert_eq!(Resize::Area(224 * 224).target(640, 480), (259, 194));
        assert_eq!(Resize::None.target(7, 9), (7, 9));
    }

    /// One file whose header libjpeg refuses must not change what the
    /// same worker makes of the files after it.
    #[test]
    fn a_refused_jpeg_header_leaves_the_next_file_alone() {
        let px = pattern(64, 48, 3);
        let mut good = Vec::new();
        jpeg::JpegEncoder::new(90)
            .unwrap()
            .encode(&px, 64, 48, 3, &mut good)
            .unwrap();
        let sof = good.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let bad_dims = |w: u16, h: u16| {
            let mut b = good.clone();
            b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
            b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
            b
        };
        let mut p = Processor::new().unwrap();
        let spec = ImageSpec::default();
        let mut want = Vec::new();
        p.process(&good, &spec, &mut want).unwrap();
        for bad in [bad_dims(0, 0), bad_dims(65535, 65535), good[..40].to_vec()] {
            assert!(p.probe(&bad, u64::MAX).is_err());
            assert!(p.process(&bad, &spec, &mut Vec::new()).is_err());
            let mut out = Vec::new();
            p.process(&good, &spec, &mut out)
                .expect("the good file after a bad one");
            assert_eq!(out, want);
        }
    }

    /// A JPEG with no frame header (tables only, or cut before it) is
    /// refused with the same reason whatever the worker read before: the
    /// header read "succeeds" and libjpeg-turbo's handle still holds the
    /// previous file's size, so a pass-through probe took it for an image
    /// of that size.
    #[test]
    fn a_jpeg_without_a_frame_is_refused_after_any_other() {
        let mut good = Vec::new();
        jpeg::JpegEncoder::new(90)
            .unwrap()
            .encode(&pattern(64, 48, 3), 64, 48, 3, &mut good)
            .unwrap();
        let sof = good.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut tables_only = good[..sof].to_vec();
        tables_only.extend_from_slice(&[0xFF, 0xD9]);
        let cut = good[..sof + 3].to_vec();
        for bad in [tables_only, cut] {
            let fresh = Processor::new().unwrap().probe(&bad, u64::MAX);
            let mut p = Processor::new().unwrap();
            p.probe(&good, u64::MAX).unwrap();
            let after = p.probe(&bad, u64::MAX);
            let (Err(a), Err(b)) = (fresh, after) else {
                panic!("a JPEG without a frame header was accepted");
            };
            assert_eq!(a.to_string(), b.to_string());
            let spec = ImageSpec::default();
            let fresh = Processor::new()
                .unwrap()
                .process(&bad, &spec, &mut Vec::new())
                .unwrap_err();
            p.process(&good, &spec, &mut Vec::new()).unwrap();
            let after = p.process(&bad, &spec, &mut Vec::new()).unwrap_err();
            assert_eq!(fresh.to_string(), after.to_string());
        }
        // the tables-only file says why
        let mut p = Processor::new().unwrap();
        p.probe(&good, u64::MAX).unwrap();
        let mut tables_only = good[..sof].to_vec();
        tables_only.extend_from_slice(&[0xFF, 0xD9]);
        let e = p.probe(&tables_only, u64::MAX).unwrap_err().to_string();
        assert!(e.contains("frame header"), "{e}");
    }

    /// A PNG whose colour profile chunk inflates to hundreds of MB: the
    /// profile (which nothing uses) is not inflated, the pixels are the
    /// same as without it. (The peak memory is this test process's own
    /// under nextest, one process per test.)
    #[test]
    fn a_colour_profile_bomb_is_not_inflated() {
        use std::io::Write;
        fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
            let mut v = (data.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(data);
            let mut h = flate2::Crc::new();
            h.update(kind);
            h.update(data);
            v.extend_from_slice(&h.sum().to_be_bytes());
            v
        }
        let png = |profile: Option<&[u8]>| {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            let mut ihdr = 2u32.to_be_bytes().to_vec();
            ihdr.extend_from_slice(&2u32.to_be_bytes());
            ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
            v.extend(chunk(b"IHDR", &ihdr));
            if let Some(p) = profile {
                v.extend(chunk(b"iCCP", p));
            }
            let rows = [0u8, 10, 20, 30, 40, 50, 60, 0, 70, 80, 90, 100, 110, 120];
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(&rows).unwrap();
            v.extend(chunk(b"IDAT", &z.finish().unwrap()));
            v.extend(chunk(b"IEND", b""));
            v
        };
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..400 {
            z.write_all(&zeros).unwrap();
        }
        let mut profile = b"p\0\0".to_vec();
        profile.extend(z.finish().unwrap());
        let (bomb, clean) = (png(Some(&profile)), png(None));
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let peak = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                .unwrap()
        };
        let before = peak();
        let mut p = Processor::new().unwrap();
        let spec = ImageSpec::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        p.probe(&bomb, 1 << 20).unwrap();
        p.process(&bomb, &spec, &mut a).unwrap();
        p.process(&clean, &spec, &mut b).unwrap();
        assert_eq!(a, b);
        let grew_mb = (peak() - before) / 1024;
        assert!(grew_mb < 100, "peak memory grew by {grew_mb} MB");
    }

    #[test]
    fn dct_scale_picks_the_smallest_covering_factor() {
        assert_eq!(dct_scale(640, 480, 280, 210), 4);
        assert_eq!(dct_scale(640, 480, 240, 180), 3);
        assert_eq!(dct_scale(640, 480, 640, 480), 8);
        assert_eq!(dct_scale(640, 480, 1000, 750), 8);
        assert_eq!(dct_scale(4000, 3000, 280, 210), 1);
    }

    /// A picture made with integer arithmetic only (no libm), so the inputs
    /// are the same on every machine: gradients, a checkerboard, a disc.
    fn pattern(w: u32, h: u32, channels: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w as usize * h as usize * channels);
        for y in 0..h {
            for x in 0..w {
                let check = if (x / 16 + y / 16) % 2 == 0 { 40 } else { 0 };
                let (dx, dy) = (x as i64 - w as i64 / 3, y as i64 - h as i64 / 2);
                let disc = if dx * dx + dy * dy < (h as i64 / 4).pow(2) {
                    90
                } else {
                    0
                };
                let px = [
                    (x * 255 / w) as u8 ^ check,
                    ((y * 255 / h) as u8).wrapping_add(disc),
                    ((x + y) * 97 % 256) as u8,
                    (255 - x * 200 / w) as u8,
                ];
                v.extend_from_slice(&px[..channels]);
            }
        }
        v
    }

    /// `jpeg` with an EXIF APP1 segment saying `orientation`.
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
        v.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
        v.extend_from_slice(b"Exif\0\0");
        v.extend_from_slice(&tiff);
        v.extend_from_slice(&jpeg[2..]);
        v
    }

    /// Every image of the pinning test below, each output preceded by its
    /// length.
    fn pipeline_outputs(p: &mut Processor) -> Vec<u8> {
        let mut jpeg = Vec::new();
        let (w, h) = (640, 480);
        p.encode(
            Pixels {
                width: w,
                height: h,
                channels: 3,
                data: pattern(w, h, 3),
            },
            Encoding::Jpeg { quality: 90 },
            &mut jpeg,
        )
        .unwrap();
        let rotated = with_orientation(&jpeg, 6);
        assert_eq!(exif::jpeg_orientation(&rotated), 6);
        // 4:4:4 and 4:2:2 files through the planes, to odd sizes
        let jpeg444 = jpeg_with(
            &pattern(203, 151, 3),
            203,
            151,
            turbojpeg::raw::TJSAMP_TJSAMP_444,
        );
        let jpeg422 = jpeg_with(
            &pattern(203, 151, 3),
            203,
            151,
            turbojpeg::raw::TJSAMP_TJSAMP_422,
        );
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(97, 61, pattern(97, 61, 4)).unwrap(),
        )
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
        let spec = |resize, color, center_crop, encoding| ImageSpec {
            color,
            center_crop,
            resize,
            encoding,
            max_pixels: DEFAULT_MAX_PIXELS,
        };
        let q95 = Encoding::Jpeg { quality: 95 };
        let png9 = Encoding::Png { compression: 9 };
        let cases = [
            (&jpeg, spec(Resize::None, ColorMode::Color, false, q95)),
            (
                &jpeg,
                spec(Resize::ShorterEdge(210), ColorMode::Color, false, q95),
            ),
            (
                &jpeg,
                spec(Resize::ShorterEdge(100), ColorMode::Grayscale, false, q95),
            ),
            (
                &jpeg,
                spec(Resize::Exact(224, 224), ColorMode::Color, true, png9),
            ),
            (
                &rotated,
                spec(Resize::ShorterEdge(210), ColorMode::Color, false, q95),
            ),
            (
                &rotated,
                spec(Resize::Area(150 * 150), ColorMode::Color, true, q95),
            ),
            (
                &jpeg444,
                spec(Resize::ShorterEdge(101), ColorMode::Color, false, q95),
            ),
            (
                &jpeg422,
                spec(Resize::Exact(97, 71), ColorMode::Unchanged, true, q95),
            ),
            (&png, spec(Resize::None, ColorMode::Unchanged, false, png9)),
            (
                &png,
                spec(Resize::ShorterEdge(200), ColorMode::Color, false, q95),
            ),
        ];
        let mut all = Vec::new();
        for (input, spec) in &cases {
            let mut out = Vec::new();
            p.process(input, spec, &mut out).unwrap();
            all.extend_from_slice(&(out.len() as u64).to_le_bytes());
            all.extend_from_slice(&out);
        }
        // video frames: JPEG straight from YUV 4:2:0 planes
        let (fw, fh) = (64u32, 48u32);
        let mut planes = pattern(fw, fh, 1);
        let chroma = pattern(fw / 2, fh / 2, 2);
        planes.extend(chroma.chunks(2).map(|c| c[0]));
        planes.extend(chroma.chunks(2).map(|c| c[1]));
        for gray in [false, true] {
            let mut out = Vec::new();
            p.encode_yuv420(&planes, fw, fh, 90, gray, &mut out)
                .unwrap();
            all.extend_from_slice(&(out.len() as u64).to_le_bytes());
            all.extend_from_slice(&out);
        }
        all
    }

    /// Output bytes of the whole pixel pipeline, pinned. If this fails, a
    /// change (ours or a codec / resize crate's) alters the images imgprep
    /// makes: bump [`PIXELS_REVISION`] and pin the new digest together with
    /// it, so that caches and earlier builds made the old way are not reused.
    /// The bytes must not depend on the SIMD level of the CPU either (caches
    /// and clean builds on other machines must agree): every resize path the
    /// CPU has is tried. (libjpeg-turbo's SIMD paths are exact by design;
    /// checked by hand with `JSIMD_FORCENONE=1` and `JSIMD_FORCESSE2=1`.)
    #[test]
    fn pixels_revision_pins_the_output() {
        use fast_image_resize::CpuExtensions;
        let mut tried = Vec::new();
        for ext in [
            CpuExtensions::None,
            CpuExtensions::Sse4_1,
            CpuExtensions::Avx2,
        ] {
            if !ext.is_supported() {
                continue;
            }
            let mut p = Processor::new().unwrap();
            // SAFETY: only extensions this CPU supports are set
            unsafe { p.resizer.set_cpu_extensions(ext) };
            let digest = crate::checksum::sha256_hex(&pipeline_outputs(&mut p));
            assert_eq!(
                (PIXELS_REVISION, digest.as_str()),
                (
                    2,
                    "281e48e7c20a38f18bb0cc1da70628bc1f61a63d021d12c4edcbfb56202a515b"
                ),
                "with the {ext:?} resize path, the images imgprep makes have changed: bump \
                 PIXELS_REVISION and pin the new digest (or, if only one CPU path differs, \
                 make the paths agree)"
            );
            tried.push(ext);
        }
        assert!(tried.len() >= 2, "only {tried:?} could be tried");
    }

    /// A JPEG of `w` x `h` RGB pixels at quality 100 with TurboJPEG
    /// subsampling `subsamp` (the raw API: the `turbojpeg` wrapper cannot
    /// ask for 4:1:1, as DV cameras write it).
    fn jpeg_with(px: &[u8], w: u32, h: u32, subsamp: turbojpeg::raw::TJSAMP) -> Vec<u8> {
        use turbojpeg::raw;
        unsafe {
            let handle = raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as i32);
            assert!(!handle.is_null());
            raw::tj3Set(handle, raw::TJPARAM_TJPARAM_QUALITY as i32, 100);
            raw::tj3Set(handle, raw::TJPARAM_TJPARAM_SUBSAMP as i32, subsamp);
            let (mut buf, mut len) = (std::ptr::null_mut(), 0);
            let res = raw::tj3Compress8(
                handle,
                px.as_ptr(),
                w as i32,
                w as i32 * 3,
                h as i32,
                raw::TJPF_TJPF_RGB,
                &mut buf,
                &mut len,
            );
            assert_eq!(res, 0);
            let out = std::slice::from_raw_parts(buf, len as usize).to_vec();
            raw::tj3Free(buf as *mut _);
            raw::tj3Destroy(handle);
            out
        }
    }

    /// JPEG to JPEG through the file's own planes makes the picture the RGB
    /// path makes, for every subsampling TurboJPEG writes, odd output sizes
    /// (chroma planes that span a column past the picture), a centre crop,
    /// DCT-scaled decodes and no resize at all: a red rectangle on grey
    /// lands where the crop and resize put it (its colour centre within 0.2
    /// pixel of the RGB path's and of the exact place), and the two
    /// pictures agree pixel by pixel.
    #[test]
    fn planes_make_the_picture_the_rgb_path_makes() {
        let (w, h) = (403u32, 301u32);
        // a red one (R - G is all chroma) and a white one (seen in luma)
        let red = (121u32, 80u32, 123u32, 111u32);
        let white = (291u32, 171u32, 77u32, 93u32);
        let mut px = vec![100u8; (w * h * 3) as usize];
        for ((rx, ry, rw, rh), colour) in [(red, [230, 30, 40]), (white, [250, 250, 250])] {
            for y in ry..ry + rh {
                for x in rx..rx + rw {
                    let i = ((y * w + x) * 3) as usize;
                    px[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
        let redness = |c: &[u8]| (c[0] as f64 - c[1] as f64 - 60.0).max(0.0);
        let whiteness = |c: &[u8]| (*c.iter().min().unwrap() as f64 - 175.0).max(0.0);
        // where a colour is: the centroid of its weight
        let centre = |p: &Pixels, weight: &dyn Fn(&[u8]) -> f64| {
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for (i, c) in p.data.chunks_exact(3).enumerate() {
                let wgt = weight(c);
                sx += wgt * ((i as u32 % p.width) as f64 + 0.5);
                sy += wgt * ((i as u32 / p.width) as f64 + 0.5);
                n += wgt;
            }
            (sx / n, sy / n)
        };
        let plain = ImageSpec::default();
        let q95 = Encoding::Jpeg { quality: 95 };
        let specs = [
            (Resize::Exact(97, 71), false),
            (Resize::ShorterEdge(101), false),
            (Resize::ShorterEdge(64), true),
            (Resize::Area(250 * 150), false),
            (Resize::None, false),
            (Resize::None, true),
        ];
        let mut p = Processor::new().unwrap();
        use turbojpeg::raw;
        for (subsamp, code, factors) in [
            ("4:4:4", raw::TJSAMP_TJSAMP_444, (1, 1)),
            ("4:2:2", raw::TJSAMP_TJSAMP_422, (2, 1)),
            ("4:2:0", raw::TJSAMP_TJSAMP_420, (2, 2)),
            ("4:4:0", raw::TJSAMP_TJSAMP_440, (1, 2)),
            ("4:1:1", raw::TJSAMP_TJSAMP_411, (4, 1)),
        ] {
            let jpeg = jpeg_with(&px, w, h, code);
            let src = p.jpeg_source(&jpeg, &ImageSpec::default()).unwrap();
            assert_eq!(src.header.chroma, Some(factors), "{subsamp}");
            for (resize, center_crop) in specs {
                let spec = ImageSpec {
                    resize,
                    center_crop,
                    encoding: q95,
                    ..ImageSpec::default()
                };
                let what = format!("{subsamp} {resize:?} crop {center_crop}");
                let src = p.jpeg_source(&jpeg, &spec).unwrap();
                assert!(planar_quality(&src, &spec).is_some(), "{what}");
                let mut planar = Vec::new();
                p.process(&jpeg, &spec, &mut planar).unwrap();
                let decoded = p.decode(&jpeg, &spec).unwrap();
                let rgb_px = p.transform(decoded, &spec).unwrap();
                let mut rgb = Vec::new();
                p.encode(rgb_px, q95, &mut rgb).unwrap();
                let a = p.decode(&planar, &plain).unwrap().pixels;
                let b = p.decode(&rgb, &plain).unwrap().pixels;
                assert_eq!((a.width, a.height), (b.width, b.height), "{what}");
                // the exact place: the rectangle's centre through the mapping
                let map = geometry::Mapping::new(w, h, Some(&spec));
                let (cx, cy, cw, ch) = map.crop;
                for ((rx, ry, rw, rh), weight, colour) in [
                    (red, &redness as &dyn Fn(&[u8]) -> f64, "red"),
                    (white, &whiteness, "white"),
                ] {
                    let (ex, ey) = (rx as f64 + rw as f64 / 2.0, ry as f64 + rh as f64 / 2.0);
                    let exact = (
                        (ex - cx as f64) * map.target.0 as f64 / cw as f64,
                        (ey - cy as f64) * map.target.1 as f64 / ch as f64,
                    );
                    if rx < cx || rx + rw > cx + cw || ry < cy || ry + rh > cy + ch {
                        continue; // (partly) cropped away
                    }
                    let (ca, cb) = (centre(&a, weight), centre(&b, weight));
                    for (got, name) in [(ca, "planes"), (cb, "rgb")] {
                        assert!(
                            (got.0 - exact.0).abs() < 0.2 && (got.1 - exact.1).abs() < 0.2,
                            "{what}: {name} {colour} centre {got:?}, exact {exact:?}"
                        );
                    }
                    assert!(
                        (ca.0 - cb.0).abs() < 0.2 && (ca.1 - cb.1).abs() < 0.2,
                        "{what}: {colour} planes {ca:?}, rgb {cb:?}"
                    );
                }
                let diff: f64 = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .map(|(&x, &y)| (x as f64 - y as f64).abs())
                    .sum::<f64>()
                    / a.data.len() as f64;
                assert!(diff < 1.5, "{what}: mean difference {diff}");
            }
        }
    }

    /// Grayscale output, EXIF rotations, and files that are not YCbCr take
    /// the RGB path.
    #[test]
    fn what_the_planes_do_not_take() {
        let px = pattern(64, 48, 3);
        let jpeg = jpeg_with(&px, 64, 48, turbojpeg::raw::TJSAMP_TJSAMP_420);
        let mut gray = Vec::new();
        JpegEncoder::new(90)
            .unwrap()
            .encode(&pattern(64, 48, 1), 64, 48, 1, &mut gray)
            .unwrap();
        let mut p = Processor::new().unwrap();
        let color = ImageSpec::default();
        let grayscale = ImageSpec {
            color: ColorMode::Grayscale,
            ..ImageSpec::default()
        };
        let png = ImageSpec {
            encoding: Encoding::Png { compression: 6 },
            ..ImageSpec::default()
        };
        let takes = |p: &mut Processor, data: &[u8], spec: &ImageSpec| {
            let src = p.jpeg_source(data, spec).unwrap();
            planar_quality(&src, spec).is_some()
        };
        assert!(takes(&mut p, &jpeg, &color));
        assert!(!takes(&mut p, &jpeg, &grayscale));
        assert!(!takes(&mut p, &jpeg, &png));
        assert!(!takes(&mut p, &with_orientation(&jpeg, 6), &color));
        assert!(!takes(&mut p, &gray, &color));
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"GIF89a"), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b""), None);
    }
}
