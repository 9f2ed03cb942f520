//! Command-line definitions. Flags are defined once here; `main.rs` turns
//! them into library settings.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "imgprep",
    version,
    about = "Turn raw images into training-ready datasets, fast and verified.",
    after_help = "Examples:\n  \
      imgprep im2rec data/train images/ --list --recursive --train-ratio 0.8\n  \
      imgprep im2rec data/train images/ --resize 210 --num-thread 2\n  \
      imgprep verify data/train_train\n  \
      imgprep inspect data/train_train.rec --json | head\n  \
      imgprep synth examples/data/drivers --classes 10 --per-class 40 &&\n    \
      imgprep build examples/drivers.toml --out out/drivers && imgprep verify out/drivers\n\n\
      Paths may be object-store URIs: s3://bucket/prefix (AWS_* settings, AWS_PROFILE, AWS_ENDPOINT_URL),\n\
      az://container/prefix (AZURE_*), gs://bucket/prefix (GOOGLE_*) or http(s)://host/path (read only).\n\n\
      Exit codes: 0 ok, 1 problems found (skips under --strict, verify failures,\n\
      bad input under on_error = \"fail\"), 2 usage or setup error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Drop-in for MXNet's im2rec.py: make .lst files (--list) or pack every PREFIX*.lst into .rec/.idx.
    #[command(
        infer_long_args = true,
        after_help = "Examples:\n  \
          # label = folder, 80/20 split, im2rec.py's own shuffle\n  \
          imgprep im2rec data/pets photos/ --list --recursive --train-ratio 0.8\n  \
          # pack data/pets_train.lst and data/pets_val.lst, shorter side 210\n  \
          imgprep im2rec data/pets photos/ --resize 210\n  \
          # multi-label lists, labels packed into each record\n  \
          imgprep im2rec train.lst images/ --pack-label --resize 256\n\n\
          Same options, defaults and outputs as im2rec.py; see the README for the few differences."
    )]
    Im2rec(Im2recArgs),
    /// Print one line per record of a .rec (id, labels, bytes, image format and size) or a .tfrecord[.gz|.zz].
    #[command(
        after_help = "Examples:\n  imgprep inspect data/pets_train.rec\n  imgprep inspect data/pets_train.rec --json --limit 5\n  imgprep inspect s3://bucket/out/full/recordio/train.rec --limit 3"
    )]
    Inspect(InspectArgs),
    /// Check a .rec (framing, every image decodes, .idx offsets, labels and counts vs the .lst), a .tfrecord, or a build's output folder.
    #[command(
        after_help = "Examples:\n  imgprep verify data/pets_train\n  imgprep verify data/pets_train.rec --json\n  imgprep verify s3://bucket/out/drivers\n\nExit 0 only when everything is right, 1 when a problem was found, 2 when given the wrong kind of file."
    )]
    Verify(VerifyArgs),
    /// Build train/validation/test datasets from a recipe (TOML): sources, splits, variants, outputs, manifest.
    #[command(
        after_help = "Examples:\n  imgprep init photos/ && imgprep build imgprep.toml --out out/\n  imgprep build examples/drivers.toml --out out/drivers\n  imgprep build recipe.toml --out part0 --shard 0/4\n\nA re-run with nothing changed does nothing; a few changed inputs re-process only those."
    )]
    Build(BuildArgs),
    /// One-shot conversion of a class-folder tree, a TinyImageNet-style tree or a folder of recordings (no recipe file): TFRecord, RecordIO, SageMaker image or folders.
    #[command(after_help = "Examples:\n  \
          # 64x64 class folders to raw-pixel TFRecords, 90/10 split\n  \
          imgprep convert tiny-imagenet/train out/ --to tfrecord --preset raw --encoding passthrough --train 0.9 --validation 0.1\n  \
          # TFDS-style shards of about 128 MiB, 224x224, GZIP\n  \
          imgprep convert photos/ out/ --to tfrecord --resize 224x224 --compression gzip\n  \
          # several outputs at once; leave grayscale/CMYK/alpha sources out\n  \
          imgprep convert photos/ out/ --to recordio --to tfrecord --resize 256 --color-policy skip\n  \
          # see the recipe it runs (keep it to rebuild with `imgprep build`)\n  \
          imgprep convert photos/ out/ --to tfrecord --print-recipe\n  \
          # recordings: rec/NAME/*.mp4 is session NAME, its ranges in labels/NAME.csv (label,start,end)\n  \
          imgprep convert rec/ out/ --to recordio --labels 'labels/{session}.csv' --unit seconds --resize 224 --train 0.8 --validation 0.2\n\n\
          Label = the sub-folder holding the image (recordings: the ranges; whole sessions go to one split). The recipe used is kept as OUT/imgprep-convert.toml;\n\
          everything `imgprep build` does applies (manifest, incremental re-runs, verify OUT).")]
    Convert(Box<ConvertArgs>),
    /// Send a build's outputs (or any folder) to s3://, az:// or gs://, laid out as SageMaker channels; skips objects already there.
    #[command(after_help = "Examples:\n  \
          imgprep push out/drivers s3://my-bucket/channels/drivers --dry-run\n  \
          imgprep push out/drivers s3://my-bucket/channels/drivers\n  \
          imgprep push frames/ s3://my-bucket/frames --layout mirror\n\n\
          Channels layout: {variant}/{split}/{split}.rec, {variant}/train/ + train_lst/ (image mode),\n\
          {variant}/tfrecord-{preset}/{split}/, manifest.json last. An object whose remote ETag equals the\n\
          local one (same part size) is skipped, so a re-run resumes. Nothing in the bucket is deleted:\n\
          objects already in a folder the push writes to that are not this dataset's (an earlier push's\n\
          shards, say) are named and make the exit code 1. Settings: AWS_ACCESS_KEY_ID,\n\
          AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL,\n\
          AWS_REQUEST_CHECKSUM_CALCULATION (when_required | when_supported). Exit 1 when anything failed.")]
    Push(PushArgs),
    /// Download the keys or URIs (s3://, az://, gs://, http(s)://) listed in a file, resumably; writes downloaded.txt and failed.txt.
    #[command(after_help = "Examples:\n  \
          imgprep pull s3-paths.txt images/\n  \
          imgprep pull keys.txt images/ --base s3://my-bucket/raw/images\n\n\
          One key or URI per line; blank lines and # comments are ignored. A file already in DEST with the\n\
          object's size and ETag is not downloaded again; one that differs is replaced only when an earlier\n\
          pull into DEST wrote it (DEST/.imgprep-pulled lists it) or with --overwrite. Keys that would escape\n\
          DEST (.., absolute) are refused. Exit 1 when anything failed (see DEST/failed.txt).")]
    Pull(PullArgs),
    /// Combine shard outputs (`build --shard I/N`) into the same result as one build, without decoding.
    #[command(
        after_help = "Example:\n  for i in 0 1 2 3; do imgprep build r.toml --out part$i --shard $i/4; done\n  imgprep merge r.toml --out out part0 part1 part2 part3"
    )]
    Merge(MergeArgs),
    /// Write a commented starter recipe (imgprep.toml) for a class-folder tree or a TinyImageNet-style tree of images.
    #[command(after_help = "Example:\n  imgprep init photos/ --output pets.toml")]
    Init(InitArgs),
    /// Write a synthetic dataset (for demos and tests; no download): class folders, multi-label lists, a TinyImageNet-like tree, Pascal VOC boxes or video recordings with time ranges.
    #[command(
        after_help = "Examples:\n  imgprep synth demo/images --classes 4 --per-class 50\n  imgprep synth demo/multilabel --layout multilabel --classes 6\n  imgprep synth demo/tiny --layout tinyimagenet --classes 10 --width 64 --height 64\n  imgprep synth demo/roads --layout voc --classes 4 --per-class 25 --width 320 --height 240\n  imgprep synth demo/sessions --layout video --sessions 3 --chunks 2 --seconds 6 --width 320 --height 180"
    )]
    Synth(SynthArgs),
}

#[derive(Args, Debug)]
pub struct Im2recArgs {
    /// Prefix of input/output .lst and .rec files (a path, or s3://bucket/prefix).
    pub prefix: PathBuf,
    /// Folder containing the images (a path, s3://bucket/prefix or http(s)://host/path).
    pub root: PathBuf,

    /// Make image list(s) by walking ROOT into PREFIX.lst instead of packing.
    #[arg(long, help_heading = "Making lists")]
    pub list: bool,
    /// Acceptable image extensions.
    #[arg(long, num_args = 1.., default_values = [".jpeg", ".jpg", ".png"], help_heading = "Making lists")]
    pub exts: Vec<String>,
    /// Number of chunks.
    #[arg(long, default_value_t = 1, help_heading = "Making lists")]
    pub chunks: usize,
    /// Ratio of images to use for training (0 to 1).
    #[arg(
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true,
        help_heading = "Making lists"
    )]
    pub train_ratio: f64,
    /// Ratio of images to use for testing (0 to 1; with --train-ratio at most 1).
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        help_heading = "Making lists"
    )]
    pub test_ratio: f64,
    /// Walk sub-folders; each folder holding images gets the next label.
    #[arg(long, help_heading = "Making lists")]
    pub recursive: bool,
    /// Keep the walk order instead of im2rec.py's shuffle (random.seed(100)).
    #[arg(long, help_heading = "Making lists")]
    pub no_shuffle: bool,

    /// Store each file's own bytes (after a header check) instead of re-encoding.
    #[arg(long, help_heading = "Packing")]
    pub pass_through: bool,
    /// Resize the shorter edge to this size (0 = keep the size).
    #[arg(long, default_value_t = 0, help_heading = "Packing")]
    pub resize: u32,
    /// Crop the longer side to make the image square (before resizing).
    #[arg(long, help_heading = "Packing")]
    pub center_crop: bool,
    /// JPEG quality 1-100, or PNG compression 0-9.
    #[arg(long, default_value_t = 95, help_heading = "Packing")]
    pub quality: u32,
    /// Worker threads (default: all cores). Output is the same for any count.
    #[arg(long, help_heading = "Packing")]
    pub num_thread: Option<usize>,
    /// 1: colour, 0: grayscale, -1: unchanged (keeps alpha for PNG output).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i8).range(-1..=1), help_heading = "Packing")]
    pub color: i8,
    /// Encoding of the stored images.
    #[arg(long, default_value = ".jpg", value_parser = [".jpg", ".png"], help_heading = "Packing")]
    pub encoding: String,
    /// Store all labels of multi-label lines in each record (read with ImageRecordIter(label_width=N)).
    #[arg(long, help_heading = "Packing")]
    pub pack_label: bool,
    /// Skip images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = imgprep::image::DEFAULT_MAX_PIXELS, help_heading = "Packing")]
    pub max_pixels: u64,
    /// Exit 1 if any image was skipped (each skip is then printed, also with -q).
    #[arg(long)]
    pub strict: bool,
    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary line and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The .rec or .tfrecord[.gz|.zz] file (a path or a URI).
    pub rec: PathBuf,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many records (default: all; 0 prints none).
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The recipe file (a path or a URI; relative paths in it resolve against its folder).
    pub recipe: PathBuf,
    /// Output folder, or s3://bucket/prefix (built in a staging folder, then pushed)
    /// (default: `out` next to the recipe).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Build slice I of N of every split (for parallel builds; combine with `imgprep merge`).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Worker threads (default: all cores). Output is the same for any count.
    #[arg(long)]
    pub num_thread: Option<usize>,
    /// Print a JSON summary on stdout (counts, hyperparameters; the full manifest is OUT/manifest.json).
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Where to keep the item cache that makes re-runs incremental
    /// (default: $IMGPREP_CACHE_DIR or ~/.cache/imgprep, under items/; delete it any time).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Remove each item's cached image as soon as every output has it: peak disk use is about the
    /// outputs' size instead of outputs + cache (e.g. frames of long recordings), but the next build
    /// decodes everything again.
    #[arg(long)]
    pub drop_cache: bool,
    /// Build into a non-empty folder that imgprep did not make (its files replace files of the same names; nothing else is touched).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The image folder (one sub-folder per class), or s3://bucket/prefix.
    pub src: PathBuf,
    /// Output folder, or s3://bucket/prefix (built in a staging folder, then pushed).
    pub out: PathBuf,
    /// Output format(s); repeat for several.
    #[arg(long = "to", required = true, value_parser = ["tfrecord", "recordio", "sagemaker-image", "folders"])]
    pub to: Vec<String>,
    /// Share of each class for training.
    #[arg(long, default_value_t = 1.0, help_heading = "Splits")]
    pub train: f64,
    /// Share of each class for validation.
    #[arg(long, default_value_t = 0.0, help_heading = "Splits")]
    pub validation: f64,
    /// Share of each class for testing.
    #[arg(long, default_value_t = 0.0, help_heading = "Splits")]
    pub test: f64,
    /// Seed for the split.
    #[arg(long, default_value_t = 1, help_heading = "Splits")]
    pub seed: u64,
    /// `210` (shorter edge), `224x224` (exact) or `area=50176` (about that many pixels, aspect kept).
    #[arg(long, help_heading = "Images")]
    pub resize: Option<String>,
    /// Crop the longer side to a centred square before resizing.
    #[arg(long, help_heading = "Images")]
    pub center_crop: bool,
    /// Output colour mode.
    #[arg(long, default_value = "color", value_parser = ["color", "grayscale", "unchanged"], help_heading = "Images")]
    pub color: String,
    /// Grayscale, CMYK and alpha sources: convert them, or skip them (counted, with reasons, in the manifest).
    #[arg(long, default_value = "convert", value_parser = ["convert", "skip"], help_heading = "Images")]
    pub color_policy: String,
    /// Stored encoding; `passthrough` keeps each file's bytes (after a header check).
    #[arg(long, default_value = "jpg", value_parser = ["jpg", "png", "passthrough"], help_heading = "Images")]
    pub encoding: String,
    /// JPEG quality 1-100 (PNG: compression 0-9).
    #[arg(long, help_heading = "Images")]
    pub quality: Option<u8>,
    /// Image extensions to take.
    #[arg(long, num_args = 1.., default_values = [".jpg", ".jpeg", ".png"], help_heading = "Images")]
    pub exts: Vec<String>,
    /// TFRecord feature preset.
    #[arg(long, default_value = "tfds", value_parser = ["tfds", "raw"], help_heading = "TFRecord")]
    pub preset: String,
    /// TFRecord compression.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "zlib"], help_heading = "TFRecord")]
    pub compression: String,
    /// Records per shard (default: shards of about --shard-mib).
    #[arg(long, conflicts_with = "shard_mib", help_heading = "TFRecord")]
    pub shard_records: Option<usize>,
    /// Target shard size in MiB (default 128).
    #[arg(long, help_heading = "TFRecord")]
    pub shard_mib: Option<u64>,
    /// RecordIO: store every label of multi-label items.
    #[arg(long)]
    pub pack_label: bool,
    /// Stop at the first unreadable image instead of skipping it (skips are listed in the manifest).
    #[arg(long)]
    pub fail_on_error: bool,
    /// The images have no classes: build an unlabelled set (num_classes = 0) on purpose.
    #[arg(long)]
    pub unlabelled: bool,
    /// Recordings: the ranges of each session, a path with `{session}` (a CSV of label,start,end
    /// rows; SRC/NAME/*.mp4 is session NAME, a file directly in SRC a session of its own), or one
    /// ActivityNet JSON.
    #[arg(long, value_name = "PATH", help_heading = "Video")]
    pub labels: Option<String>,
    /// Recordings: what the ranges' start and end are.
    #[arg(long, value_parser = ["seconds", "milliseconds", "frames"], help_heading = "Video")]
    pub unit: Option<String>,
    /// Recordings with --unit frames: the number of a session's first frame (0 or 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1), help_heading = "Video")]
    pub frame_base: Option<u32>,
    /// Recordings: `video` (a chunk starts where the previous chunk's video ends) or `concat` (at
    /// the sum of the previous files' durations, as ffmpeg's concat demuxer joins them).
    #[arg(long, value_parser = ["video", "concat"], help_heading = "Video")]
    pub time_reference: Option<String>,
    /// Print the recipe this conversion runs and exit.
    #[arg(long)]
    pub print_recipe: bool,
    /// Worker threads (default: all cores). Output is the same for any count.
    #[arg(long)]
    pub num_thread: Option<usize>,
    /// Print a JSON summary on stdout (counts, hyperparameters; the full manifest is OUT/manifest.json).
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Where to keep the item cache (default: under $IMGPREP_CACHE_DIR or ~/.cache/imgprep).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build into a non-empty folder that imgprep did not make (its files replace files of the same names; nothing else is touched).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// A build's output folder (or any folder).
    pub dir: PathBuf,
    /// s3://bucket/prefix
    pub dest: String,
    /// `channels` (SageMaker channels, for build outputs) or `mirror` (same relative paths).
    #[arg(long, default_value = "channels", value_parser = ["channels", "mirror"])]
    pub layout: String,
    /// List what would be uploaded or skipped, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Upload every file, even objects whose remote ETag matches, and
    /// replace objects imgprep did not put there (a dataset is otherwise
    /// pushed only to an empty prefix or over an imgprep dataset).
    #[arg(long)]
    pub force: bool,
    /// Multipart part size in MiB (also the ETag comparison's).
    #[arg(long, default_value_t = 8)]
    pub part_size_mib: u64,
    /// Objects sent at a time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Print a JSON report on stdout (with --dry-run: every planned action).
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// A text file (or object) of keys or s3://, http(s):// URIs, one per line.
    pub list: PathBuf,
    /// Folder to download into (keys keep their paths below it).
    pub dest: PathBuf,
    /// s3://bucket/prefix for plain keys; also stripped from URIs under it.
    #[arg(long)]
    pub base: Option<String>,
    /// Downloads at a time.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Replace files in DEST that differ from their objects even when no earlier pull wrote them
    /// (by default those keys fail and the files are left as they are).
    #[arg(long)]
    pub overwrite: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The recipe the shards were built from.
    pub recipe: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The shard output folders.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// The item cache of a shard built with --cache-dir (repeat for each);
    /// shards built without it are found by their output folder.
    #[arg(long, value_name = "DIR")]
    pub shard_cache: Vec<PathBuf>,
    /// Worker threads (default: all cores). Output is the same for any count.
    #[arg(long)]
    pub num_thread: Option<usize>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary and no warnings (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
    /// Where to keep the merged output's item cache (default: under $IMGPREP_CACHE_DIR or ~/.cache/imgprep).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build into a non-empty folder that imgprep did not make (its files replace files of the same names; nothing else is touched).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The image folder (one sub-folder per class), or s3://bucket/prefix (az://, gs://).
    pub dir: PathBuf,
    /// Where to write the recipe.
    #[arg(long, default_value = "imgprep.toml")]
    pub output: PathBuf,
    /// Overwrite an existing recipe.
    #[arg(long)]
    pub force: bool,
    /// No notes and no summary line (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// PREFIX of PREFIX.rec (+ .idx and .lst when present); PREFIX.rec also works;
    /// or a build's output folder (checks everything its manifest.json claims). Paths and s3:// or http(s):// URIs.
    pub prefix: PathBuf,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub num_thread: Option<usize>,
    /// No progress bar and no summary (problems and errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder to write the dataset into.
    pub dir: PathBuf,
    /// What to lay out: `classes` (class_K/img_NNNNN.jpg + index.csv with subject groups),
    /// `multilabel` (images/ + train.lst, val.lst with one 0/1 column per class),
    /// `tinyimagenet` (wnids.txt, words.txt, train/{id}/images/, val/ with annotations, test/),
    /// `voc` (object detection: JPEGImages/ with painted rectangles and Annotations/*.xml with
    /// their boxes; `--classes` x `--per-class` images),
    /// `video` (videos/sessionK/chunkNN.mp4 made with ffmpeg, each frame's number painted in it,
    /// and labels/sessionK.csv with label,start,end ranges in seconds; see --sessions).
    #[arg(long, default_value = "classes")]
    pub layout: imgprep::synth::Layout,
    /// Number of classes.
    #[arg(long, default_value_t = 3)]
    pub classes: usize,
    /// Images per class.
    #[arg(long, default_value_t = 20)]
    pub per_class: usize,
    /// Image width in pixels.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// Seed for the pictures (the same seed gives the same files).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Image format: jpg or png.
    #[arg(long, default_value = "jpg", value_parser = ["jpg", "png"])]
    pub format: String,
    /// Video layout: number of sessions (recordings).
    #[arg(long, default_value_t = 3, help_heading = "Video layout")]
    pub sessions: usize,
    /// Video layout: chunk files per session.
    #[arg(long, default_value_t = 2, help_heading = "Video layout")]
    pub chunks: usize,
    /// Video layout: seconds per chunk.
    #[arg(long, default_value_t = 6.0, help_heading = "Video layout")]
    pub seconds: f64,
    /// Video layout: frames per second.
    #[arg(long, default_value_t = 30, help_heading = "Video layout")]
    pub fps: u32,
    /// No summary line (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command says what it does, and
    /// every command has examples.
    #[test]
    fn every_option_has_help_and_every_command_examples() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            assert!(
                sub.get_after_help()
                    .is_some_and(|h| h.to_string().contains("imgprep")),
                "imgprep {} has no examples",
                sub.get_name()
            );
            for arg in sub.get_arguments() {
                if arg.is_hide_set() || ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                assert!(
                    arg.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "imgprep {} {}: no help text",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
