//! A PNG of the training curves: the chart is drawn here on an RGB canvas (no plotting
//! dependency for one chart), the file is written by the `png` crate.

/// An RGB canvas.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<[u8; 3]>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas { width, height, pixels: vec![[255, 255, 255]; width * height] }
    }

    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        self.pixels[y * self.width + x]
    }

    /// A 2-pixel-wide line (Bresenham).
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            self.set(x, y + 1, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for x in x0..=x1 {
            for y in y0..=y1 {
                self.set(x, y, c);
            }
        }
    }

    pub fn to_png(&self) -> Vec<u8> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("a PNG header into memory");
        writer.write_image_data(self.pixels.as_flattened()).expect("a PNG body into memory");
        writer.finish().expect("a PNG end into memory");
        png
    }
}

/// Training loss per step (blue, with its moving average in dark blue) in the top panel, and
/// validation scores per epoch (one colour per metric) in the bottom panel, each scaled to its
/// own range. Axes are drawn; values are in the metrics JSONL beside it.
pub fn training_curves(loss: &[(u64, f64)], eval: &[(u64, Vec<f64>)]) -> Canvas {
    let (w, h) = (800usize, 500usize);
    let mut c = Canvas::new(w, h);
    let axis = [40, 40, 40];
    let panels = [(20i64, 30i64, 780i64, 260i64), (20, 290, 780, 480)];
    for &(x0, y0, x1, y1) in &panels {
        c.line((x0, y1), (x1, y1), axis);
        c.line((x0, y0), (x0, y1), axis);
    }
    let max_step = loss.iter().map(|p| p.0).chain(eval.iter().map(|p| p.0)).max().unwrap_or(1).max(1) as f64;
    let plot = |c: &mut Canvas, pts: &[(u64, f64)], panel: (i64, i64, i64, i64), lo: f64, hi: f64, col: [u8; 3]| {
        let (x0, y0, x1, y1) = panel;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let to_px = |(s, v): (u64, f64)| {
            let x = x0 + ((s as f64 / max_step) * (x1 - x0) as f64).round() as i64;
            let y = y1 - (((v - lo) / span) * (y1 - y0) as f64).round() as i64;
            (x, y)
        };
        for pair in pts.windows(2) {
            c.line(to_px(pair[0]), to_px(pair[1]), col);
        }
        for &p in pts {
            let (x, y) = to_px(p);
            c.rect(x - 1, y - 1, x + 1, y + 1, col);
        }
    };
    if !loss.is_empty() {
        let lo = loss.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = loss.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if loss.len() > 1 {
            plot(&mut c, loss, panels[0], lo, hi, [150, 180, 235]);
        }
        let k = (loss.len() / 50).max(1);
        let smooth: Vec<(u64, f64)> = (0..loss.len())
            .map(|i| {
                let from = i.saturating_sub(k - 1);
                let mean = loss[from..=i].iter().map(|p| p.1).sum::<f64>() / (i - from + 1) as f64;
                (loss[i].0, mean)
            })
            .collect();
        plot(&mut c, &smooth, panels[0], lo, hi, [20, 60, 160]);
    }
    let colours = [[200, 60, 30], [30, 150, 60], [150, 60, 180]];
    let n_metrics = eval.iter().map(|e| e.1.len()).max().unwrap_or(0);
    for (m, colour) in colours.iter().enumerate().take(n_metrics) {
        let pts: Vec<(u64, f64)> = eval.iter().filter_map(|(s, v)| v.get(m).map(|&x| (*s, x))).collect();
        plot(&mut c, &pts, panels[1], 0.0, 1.0, *colour);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_to_the_canvas() {
        let canvas = training_curves(&[(1, 1.1), (2, 0.9), (3, 0.7)], &[(3, vec![0.5, 0.6])]);
        let png = canvas.to_png();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (800, 500));
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        let canvas = &canvas;
        let drawn: Vec<u8> = (0..500).flat_map(|y| (0..800).flat_map(move |x| canvas.get(x, y))).collect();
        assert_eq!(&pixels[..info.buffer_size()], drawn.as_slice());
        assert!(drawn.iter().any(|&v| v != 255), "the chart draws something");
    }
}
