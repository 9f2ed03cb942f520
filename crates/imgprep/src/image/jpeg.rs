//! JPEG through libjpeg-turbo: header reads, DCT-scaled decoding with warning
//! detection, and encoding.
//!
//! Decoding calls the TurboJPEG 3 C API directly (through `turbojpeg::raw`)
//! because the safe wrapper does not tell warnings ("Premature end of JPEG
//! file": the picture came out partly grey) from fatal errors.

use super::ImageError;
use std::ffi::CStr;
use turbojpeg::raw;

/// Colour model of the stored JPEG data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegColor {
    Gray,
    Color,
    /// CMYK or YCCK (Adobe): needs our own conversion to RGB.
    Cmyk,
}

#[derive(Debug, Clone, Copy)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    pub color: JpegColor,
    /// For a three-component YCbCr file with a subsampling TurboJPEG knows:
    /// how many luma samples each chroma sample spans across and down
    /// ((2, 2) for 4:2:0). Such a file can be decoded to its planes.
    pub chroma: Option<(u32, u32)>,
}

/// TurboJPEG's subsampling codes and the chroma factors they stand for
/// (see [`JpegHeader::chroma`]).
const SUBSAMPLINGS: [(raw::TJSAMP, (u32, u32)); 6] = [
    (raw::TJSAMP_TJSAMP_444, (1, 1)),
    (raw::TJSAMP_TJSAMP_422, (2, 1)),
    (raw::TJSAMP_TJSAMP_420, (2, 2)),
    (raw::TJSAMP_TJSAMP_440, (1, 2)),
    (raw::TJSAMP_TJSAMP_411, (4, 1)),
    (raw::TJSAMP_TJSAMP_441, (1, 4)),
];

/// The sizes of the Y, Cb and Cr planes of a `width` x `height` picture at
/// TurboJPEG subsampling `subsamp`, as TurboJPEG lays them out (luma padded
/// to whole chroma samples).
pub fn plane_dims(width: u32, height: u32, subsamp: raw::TJSAMP) -> Option<[(u32, u32); 3]> {
    let mut dims = [(0u32, 0u32); 3];
    for (i, d) in dims.iter_mut().enumerate() {
        let pw = unsafe { raw::tj3YUVPlaneWidth(i as i32, width as i32, subsamp) };
        let ph = unsafe { raw::tj3YUVPlaneHeight(i as i32, height as i32, subsamp) };
        if pw <= 0 || ph <= 0 {
            return None;
        }
        *d = (pw as u32, ph as u32);
    }
    Some(dims)
}

/// The planes of a 4:2:0 picture of `width` x `height` (what
/// [`JpegEncoder::encode_yuv420`] takes): luma padded to even sizes.
pub fn dims_420(width: u32, height: u32) -> [(u32, u32); 3] {
    plane_dims(width, height, raw::TJSAMP_TJSAMP_420).expect("4:2:0 planes of a checked size")
}

/// A picture as its three colour planes, Y then Cb then Cr, each stored
/// without padding between rows (`stride` = width) one after the other in
/// one buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct YuvPlanes {
    /// Each plane's width and height.
    pub dims: [(u32, u32); 3],
    pub data: Vec<u8>,
}

impl YuvPlanes {
    /// The bytes of `count` planes from plane `first` on.
    pub fn plane_run(&self, first: usize, count: usize) -> &[u8] {
        let size = |&(w, h): &(u32, u32)| w as usize * h as usize;
        let start: usize = self.dims[..first].iter().map(size).sum();
        let len: usize = self.dims[first..first + count].iter().map(size).sum();
        &self.data[start..start + len]
    }
}

/// What the decoder should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegOut {
    Gray,
    Rgb,
    /// Raw CMYK samples as stored (Adobe files store them inverted).
    Cmyk,
}

impl JpegOut {
    pub fn channels(self) -> usize {
        match self {
            JpegOut::Gray => 1,
            JpegOut::Rgb => 3,
            JpegOut::Cmyk => 4,
        }
    }
}

/// A reusable libjpeg-turbo decompressor (one per worker thread).
pub struct JpegDecoder {
    handle: raw::tjhandle,
}

// The handle is only used through &mut self.
unsafe impl Send for JpegDecoder {}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        unsafe { raw::tj3Destroy(self.handle) }
    }
}

/// Warnings libjpeg emits for files that still decode completely and right:
/// junk between markers outside the entropy-coded data (a few bytes before a
/// table, the next scan, or the end-of-image marker). Junk before a restart
/// marker (0xd0..0xd7) means lost scan data: the picture comes out scrambled,
/// as in `hopper_bad_exif.jpg`. Every other warning is a skip too.
fn harmless_warning(msg: &str) -> bool {
    let Some(pos) = msg.find("extraneous bytes before marker 0x") else {
        return false;
    };
    let hex = &msg[pos + "extraneous bytes before marker 0x".len()..];
    match u8::from_str_radix(hex.get(..2).unwrap_or(""), 16) {
        Ok(marker) => !(0xd0..=0xd7).contains(&marker),
        Err(_) => false,
    }
}

#[cfg(test)]
#[test]
fn restart_marker_junk_is_not_harmless() {
    assert!(!harmless_warning(
        "Corrupt JPEG data: 1214 extraneous bytes before marker 0xd0"
    ));
    assert!(harmless_warning(
        "Corrupt JPEG data: 5 extraneous bytes before marker 0xdb"
    ));
    assert!(harmless_warning(
        "Corrupt JPEG data: 2 extraneous bytes before marker 0xd9"
    ));
    assert!(!harmless_warning("Premature end of JPEG file"));
}

/// Whether the marker segments after the start of `data` reach a frame
/// header (SOFn) before the end of the image or of the data, walking them
/// as libjpeg does (bytes that are not a marker skipped, fill bytes, the
/// standalone markers). libjpeg-turbo reads a stream without one (a
/// tables-only JPEG, or one cut before its frame header) as a successful
/// header read that leaves the previous file's size in the handle.
fn has_frame_header(data: &[u8]) -> bool {
    let mut i = 2; // after SOI (libjpeg refuses a file without it)
    loop {
        // the next marker: 0xFF, any fill 0xFFs, then a marker byte
        while i < data.len() && data[i] != 0xFF {
            i += 1;
        }
        while i < data.len() && data[i] == 0xFF {
            i += 1;
        }
        let Some(&m) = data.get(i) else {
            return false;
        };
        i += 1;
        match m {
            0xC0..=0xCF if !matches!(m, 0xC4 | 0xC8 | 0xCC) => return true,
            // a scan before any frame: libjpeg's own error says so
            0xDA => return true,
            0xD9 => return false,
            0x01 | 0xD0..=0xD8 => {}
            _ => {
                let Some(len) = data.get(i..i + 2) else {
                    return false;
                };
                i += u16::from_be_bytes([len[0], len[1]]) as usize;
            }
        }
    }
}

#[cfg(test)]
#[test]
fn frame_headers_are_found_as_libjpeg_finds_them() {
    let seg = |m: u8, body: &[u8]| {
        let mut v = vec![0xFF, m];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    };
    let soi = [0xFF, 0xD8];
    let tables = [
        seg(0xE0, b"JFIF\0xx"),
        seg(0xDB, &[0; 65]),
        seg(0xC4, &[0; 20]),
    ]
    .concat();
    let sof = seg(0xC0, &[8, 0, 4, 0, 4, 1, 1, 0x11, 0]);
    let eoi = [0xFF, 0xD9];
    assert!(has_frame_header(&[&soi[..], &tables, &sof, &eoi].concat()));
    // fill bytes and junk before a marker, as libjpeg skips them
    assert!(has_frame_header(
        &[&soi[..], &tables, &[0x00, 0x12, 0xFF, 0xFF], &sof].concat()
    ));
    // tables only, or cut inside the tables
    assert!(!has_frame_header(&[&soi[..], &tables, &eoi].concat()));
    assert!(!has_frame_header(&[&soi[..], &tables].concat()));
    assert!(!has_frame_header(&[&soi[..], &tables[..30]].concat()));
    // DHT, JPG and DAC are not frame headers
    assert!(!has_frame_header(
        &[&soi[..], &seg(0xC8, &[0; 4]), &eoi].concat()
    ));
}

/// Scans a progressive JPEG may have before it is refused as a decoding
/// bomb (libjpeg-turbo's own tools suggest 500).
pub const MAX_SCANS: i32 = 500;

impl JpegDecoder {
    pub fn new() -> Result<Self, ImageError> {
        Ok(JpegDecoder {
            handle: Self::init()?,
        })
    }

    fn init() -> Result<raw::tjhandle, ImageError> {
        let handle = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as i32) };
        if handle.is_null() {
            return Err(ImageError::Codec(
                "could not initialise libjpeg-turbo".into(),
            ));
        }
        unsafe { raw::tj3Set(handle, raw::TJPARAM_TJPARAM_STOPONWARNING as i32, 0) };
        Ok(handle)
    }

    /// A fresh handle after a fatal error: libjpeg leaves the failed
    /// file's state in the old one (a header read that fails stays
    /// "inside a header"), and every later file on this thread then failed
    /// with made-up reasons ("two SOI markers", "bogus marker length").
    fn reset(&mut self) {
        if let Ok(fresh) = Self::init() {
            unsafe { raw::tj3Destroy(self.handle) };
            self.handle = fresh;
        }
    }

    /// The error of a failed call, as a skip reason; the handle is reset
    /// for the next file.
    fn failed(&mut self) -> ImageError {
        let msg = self.error().1;
        self.reset();
        Self::corrupt(msg)
    }

    fn error(&self) -> (bool, String) {
        unsafe {
            let fatal = raw::tj3GetErrorCode(self.handle) == raw::TJERR_TJERR_FATAL as i32;
            let msg = CStr::from_ptr(raw::tj3GetErrorStr(self.handle))
                .to_string_lossy()
                .into_owned();
            (fatal, msg)
        }
    }

    fn corrupt(msg: String) -> ImageError {
        ImageError::Corrupt {
            format: "JPEG",
            message: msg,
        }
    }

    pub fn read_header(&mut self, data: &[u8]) -> Result<JpegHeader, ImageError> {
        let res = unsafe { raw::tj3DecompressHeader(self.handle, data.as_ptr(), data.len() as _) };
        // A failed read reports "warning" when any warning came before the
        // error that stopped it (a cut file: "premature end", then a
        // fatal one), and then the handle still holds the previous file's
        // header; so only a harmless warning lets the read count, as in
        // `decode`.
        if res != 0 && !harmless_warning(&self.error().1) {
            return Err(self.failed());
        }
        if !has_frame_header(data) {
            // nothing was read into the handle: what it holds is the
            // previous file's header
            return Err(Self::corrupt(
                "no image in the file: it ends before its frame header (cut short, or a \
                 tables-only JPEG)"
                    .into(),
            ));
        }
        let get = |p: raw::TJPARAM| unsafe { raw::tj3Get(self.handle, p as i32) };
        let width = get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
        let height = get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
        if width <= 0 || height <= 0 {
            self.reset();
            return Err(Self::corrupt(format!("bad dimensions {width}x{height}")));
        }
        // A progressive JPEG of a few KB can hold thousands of scans that each
        // cost a pass over the whole image; real encoders write about ten.
        // The limit is set for progressive files only: libjpeg-turbo's scan
        // counting slows every decode by about 10 % (measured).
        let limit = if get(raw::TJPARAM_TJPARAM_PROGRESSIVE) == 1 {
            MAX_SCANS
        } else {
            0
        };
        unsafe { raw::tj3Set(self.handle, raw::TJPARAM_TJPARAM_SCANLIMIT as i32, limit) };
        let colorspace = get(raw::TJPARAM_TJPARAM_COLORSPACE) as u32;
        let color = match colorspace {
            raw::TJCS_TJCS_GRAY => JpegColor::Gray,
            raw::TJCS_TJCS_CMYK | raw::TJCS_TJCS_YCCK => JpegColor::Cmyk,
            _ => JpegColor::Color,
        };
        let subsamp = get(raw::TJPARAM_TJPARAM_SUBSAMP);
        let chroma = SUBSAMPLINGS
            .iter()
            .find(|&&(code, _)| code == subsamp && colorspace == raw::TJCS_TJCS_YCbCr)
            .map(|&(_, factors)| factors);
        Ok(JpegHeader {
            width: width as u32,
            height: height as u32,
            color,
            chroma,
        })
    }

    /// Decodes at `num/8` scale into `out` (resized to fit). Returns the
    /// scaled width and height. Call `read_header` on the same data first.
    pub fn decode(
        &mut self,
        data: &[u8],
        header: &JpegHeader,
        scale_num: u32,
        format: JpegOut,
        out: &mut Vec<u8>,
    ) -> Result<(u32, u32), ImageError> {
        let (w, h) = self.set_scale(header, scale_num)?;
        let pitch = w as usize * format.channels();
        // Every byte is overwritten: a reused buffer of the same size is not cleared.
        out.resize(pitch * h as usize, 0);
        let pf = match format {
            JpegOut::Gray => raw::TJPF_TJPF_GRAY,
            JpegOut::Rgb => raw::TJPF_TJPF_RGB,
            JpegOut::Cmyk => raw::TJPF_TJPF_CMYK,
        };
        let res = unsafe {
            raw::tj3Decompress8(
                self.handle,
                data.as_ptr(),
                data.len() as _,
                out.as_mut_ptr(),
                pitch as i32,
                pf,
            )
        };
        self.check_decoded(res)?;
        Ok((w, h))
    }

    /// Sets the `num/8` scale for the next decode; returns the scaled size.
    fn set_scale(&mut self, header: &JpegHeader, scale_num: u32) -> Result<(u32, u32), ImageError> {
        // TurboJPEG only accepts reduced fractions (1/2, not 4/8).
        let g = gcd(scale_num, 8);
        let sf = raw::tjscalingfactor {
            num: (scale_num / g) as i32,
            denom: (8 / g) as i32,
        };
        if unsafe { raw::tj3SetScalingFactor(self.handle, sf) } != 0 {
            let msg = self.error().1;
            self.reset();
            return Err(ImageError::Codec(msg));
        }
        Ok((
            (header.width * scale_num).div_ceil(8),
            (header.height * scale_num).div_ceil(8),
        ))
    }

    /// A decode's result: a warning that leaves the picture whole passes.
    fn check_decoded(&mut self, res: i32) -> Result<(), ImageError> {
        if res != 0 {
            let (fatal, msg) = self.error();
            if fatal || !harmless_warning(&msg) {
                self.reset();
                return Err(Self::corrupt(msg));
            }
        }
        Ok(())
    }

    /// Decodes at `num/8` scale to the file's own Y, Cb and Cr planes (at
    /// its own subsampling), with no upsampling and no colour conversion:
    /// what a JPEG-to-JPEG transform needs. Only for a header with
    /// [`JpegHeader::chroma`]; `buf` is reused for the planes.
    pub fn decode_planes(
        &mut self,
        data: &[u8],
        header: &JpegHeader,
        scale_num: u32,
        mut buf: Vec<u8>,
    ) -> Result<YuvPlanes, ImageError> {
        let Some(chroma) = header.chroma else {
            return Err(ImageError::Codec(
                "not a YCbCr JPEG with a known subsampling".into(),
            ));
        };
        let (w, h) = self.set_scale(header, scale_num)?;
        let subsamp = SUBSAMPLINGS
            .iter()
            .find(|&&(_, factors)| factors == chroma)
            .map_or(raw::TJSAMP_TJSAMP_UNKNOWN, |&(code, _)| code);
        let dims = plane_dims(w, h, subsamp).ok_or_else(|| {
            ImageError::Codec(format!(
                "no YUV plane size for {w}x{h} (subsampling {subsamp})"
            ))
        })?;
        let sizes = dims.map(|(pw, ph)| pw as usize * ph as usize);
        // Every byte is overwritten: a reused buffer is not cleared.
        buf.resize(sizes.iter().sum(), 0);
        let (y, rest) = buf.split_at_mut(sizes[0]);
        let (u, v) = rest.split_at_mut(sizes[1]);
        let mut planes = [y.as_mut_ptr(), u.as_mut_ptr(), v.as_mut_ptr()];
        let mut strides = dims.map(|(pw, _)| pw as i32);
        let res = unsafe {
            raw::tj3DecompressToYUVPlanes8(
                self.handle,
                data.as_ptr(),
                data.len() as _,
                planes.as_mut_ptr(),
                strides.as_mut_ptr(),
            )
        };
        self.check_decoded(res)?;
        Ok(YuvPlanes { dims, data: buf })
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A reusable JPEG encoder (4:2:0 for colour, like OpenCV's default).
pub struct JpegEncoder {
    inner: turbojpeg::Compressor,
    quality: i32,
}

impl JpegEncoder {
    pub fn new(quality: u8) -> Result<Self, ImageError> {
        let mut inner =
            turbojpeg::Compressor::new().map_err(|e| ImageError::Codec(e.to_string()))?;
        inner
            .set_quality(quality.clamp(1, 100) as i32)
            .map_err(|e| ImageError::Codec(e.to_string()))?;
        Ok(JpegEncoder {
            inner,
            quality: quality as i32,
        })
    }

    pub fn quality(&self) -> i32 {
        self.quality
    }

    /// Encodes 1- or 3-channel 8-bit pixels, appending to `out`.
    pub fn encode(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        channels: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ImageError> {
        let (format, subsamp) = match channels {
            1 => (turbojpeg::PixelFormat::GRAY, turbojpeg::Subsamp::Gray),
            3 => (turbojpeg::PixelFormat::RGB, turbojpeg::Subsamp::Sub2x2),
            n => {
                return Err(ImageError::Codec(format!(
                    "JPEG cannot hold {n}-channel pixels"
                )))
            }
        };
        let enc = |e: turbojpeg::Error| ImageError::Codec(format!("JPEG encode: {e}"));
        self.inner.set_subsamp(subsamp).map_err(enc)?;
        let image = turbojpeg::Image {
            pixels,
            width: width as usize,
            pitch: width as usize * channels,
            height: height as usize,
            format,
        };
        let buf = self.inner.compress_to_owned(image).map_err(enc)?;
        out.extend_from_slice(&buf);
        Ok(())
    }
}

impl JpegEncoder {
    /// Encodes full-range BT.601 YUV 4:2:0 planes (Y, then U, then V, one
    /// after the other, sized as [`dims_420`] says: for even
    /// sizes, as ffmpeg's `yuvj420p` frames come): JPEG's own colour space,
    /// so nothing is converted. `gray` keeps only Y.
    pub fn encode_yuv420(
        &mut self,
        planes: &[u8],
        width: u32,
        height: u32,
        gray: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ImageError> {
        let (w, h) = (width as usize, height as usize);
        let [(yw, yh), (cw, ch), _] =
            dims_420(width, height).map(|(a, b)| (a as usize, b as usize));
        if planes.len() != yw * yh + 2 * cw * ch {
            return Err(ImageError::Codec(format!(
                "YUV 4:2:0 frame of {width}x{height}: {} bytes",
                planes.len()
            )));
        }
        let enc = |e: turbojpeg::Error| ImageError::Codec(format!("JPEG encode: {e}"));
        let buf = if gray {
            self.inner
                .set_subsamp(turbojpeg::Subsamp::Gray)
                .map_err(enc)?;
            let image = turbojpeg::Image {
                pixels: &planes[..yw * yh],
                width: w,
                pitch: yw,
                height: h,
                format: turbojpeg::PixelFormat::GRAY,
            };
            self.inner.compress_to_owned(image).map_err(enc)?
        } else {
            let image = turbojpeg::YuvImage {
                pixels: planes,
                width: w,
                align: 1,
                height: h,
                subsamp: turbojpeg::Subsamp::Sub2x2,
            };
            self.inner.compress_yuv_to_owned(image).map_err(enc)?
        };
        out.extend_from_slice(&buf);
        Ok(())
    }
}

/// Does the file end with an EOI marker (allowing trailing padding/junk)?
/// A cheap completeness check for pass-through.
pub fn has_eoi(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
