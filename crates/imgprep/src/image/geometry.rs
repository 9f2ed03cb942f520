//! Where every point of a source image lands in the output image: EXIF
//! orientation, centre crop and resize as one mapping. The pixel transform
//! ([`super::Processor::transform`]) and the boxes of a detection dataset
//! use the same numbers, so a box drawn around an object stays around it.
//!
//! Coordinates are continuous: (0, 0) is the top-left corner of the
//! top-left pixel and (W, H) the bottom-right corner of the image.

use super::ops;
use super::ImageSpec;
use crate::annotations::BBox;

/// The source as found in the prepare stage: its upright size (after EXIF
/// orientation) and the orientation that was applied to get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceGeometry {
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 (1 or 0: none).
    pub orientation: u8,
}

impl SourceGeometry {
    /// Width and height of the pixels as stored (before orientation).
    pub fn stored(&self) -> (u32, u32) {
        ops::oriented_dims(self.width, self.height, self.orientation)
    }
}

/// Upright image -> output image: a crop rectangle (in upright pixels) and
/// the output size it is scaled to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    /// Crop origin and size in upright pixels.
    pub crop: (u32, u32, u32, u32),
    /// Output size.
    pub target: (u32, u32),
}

impl Mapping {
    /// The mapping `spec` applies to an upright `w` x `h` image (`None`:
    /// pass-through, the identity).
    pub fn new(w: u32, h: u32, spec: Option<&ImageSpec>) -> Mapping {
        let Some(spec) = spec else {
            return Mapping {
                crop: (0, 0, w, h),
                target: (w, h),
            };
        };
        let crop = if spec.center_crop {
            ops::center_square(w, h)
        } else {
            (0, 0, w, h)
        };
        Mapping {
            crop,
            target: spec.resize.target(crop.2, crop.3),
        }
    }

    /// A box in upright pixels -> output pixels (not clipped: a box the
    /// crop cuts reaches outside `0..target`).
    pub fn map_box(&self, b: &BBox) -> BBox {
        let (cx, cy, cw, ch) = self.crop;
        let sx = self.target.0 as f64 / cw as f64;
        let sy = self.target.1 as f64 / ch as f64;
        BBox {
            xmin: (b.xmin - cx as f64) * sx,
            ymin: (b.ymin - cy as f64) * sy,
            xmax: (b.xmax - cx as f64) * sx,
            ymax: (b.ymax - cy as f64) * sy,
        }
    }
}

/// A box drawn on the stored pixels (`w` x `h` as stored) -> the upright
/// image that EXIF orientation `o` makes of them.
pub fn orient_box(b: &BBox, w: u32, h: u32, o: u8) -> BBox {
    let (w, h) = (w as f64, h as f64);
    let p = |x: f64, y: f64| -> (f64, f64) {
        match o {
            2 => (w - x, y),
            3 => (w - x, h - y),
            4 => (x, h - y),
            5 => (y, x),
            6 => (h - y, x),
            7 => (h - y, w - x),
            8 => (y, w - x),
            _ => (x, y),
        }
    };
    let (x0, y0) = p(b.xmin, b.ymin);
    let (x1, y1) = p(b.xmax, b.ymax);
    BBox {
        xmin: x0.min(x1),
        ymin: y0.min(y1),
        xmax: x0.max(x1),
        ymax: y0.max(y1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ops, Pixels, Resize};

    /// A one-pixel-wide marker moved by `ops::orient` lands where
    /// `orient_box` puts a box around it, for all eight orientations.
    #[test]
    fn boxes_turn_with_the_pixels() {
        let (w, h) = (5usize, 3usize);
        for o in 1..=8u8 {
            let mut data = vec![0u8; w * h];
            data[w + 3] = 255; // stored pixel (3, 1)
            let px = ops::orient(
                Pixels {
                    width: w as u32,
                    height: h as u32,
                    channels: 1,
                    data,
                },
                o,
            );
            let at = px.data.iter().position(|&v| v == 255).unwrap();
            let (x, y) = (at % px.width as usize, at / px.width as usize);
            let b = orient_box(
                &BBox {
                    xmin: 3.0,
                    ymin: 1.0,
                    xmax: 4.0,
                    ymax: 2.0,
                },
                w as u32,
                h as u32,
                o,
            );
            assert_eq!(
                (b.xmin, b.ymin, b.xmax, b.ymax),
                (x as f64, y as f64, x as f64 + 1.0, y as f64 + 1.0),
                "orientation {o}"
            );
        }
    }

    #[test]
    fn crop_and_resize_scale_boxes() {
        let spec = ImageSpec {
            center_crop: true,
            resize: Resize::Exact(100, 100),
            ..ImageSpec::default()
        };
        let m = Mapping::new(400, 200, Some(&spec));
        assert_eq!(m.crop, (100, 0, 200, 200));
        let b = m.map_box(&BBox {
            xmin: 100.0,
            ymin: 50.0,
            xmax: 300.0,
            ymax: 150.0,
        });
        assert_eq!((b.xmin, b.ymin, b.xmax, b.ymax), (0.0, 25.0, 100.0, 75.0));
        assert_eq!(Mapping::new(7, 9, None).target, (7, 9));
    }
}
