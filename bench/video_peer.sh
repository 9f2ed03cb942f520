#!/usr/bin/env bash
# The peer pipeline for labelled session videos, as a researcher ran it, on a
# bench/make_sessions.py corpus:
#   1. per subject, concatenate its MP4 chunks with ffmpeg's concat demuxer:
#        printf "file '%s'\n" CORPUS/videos/subjectK/*.mp4 > mylist.txt
#        ffmpeg -f concat -safe 0 -i mylist.txt -c copy output.mp4
#      (the researcher ran printf with ./*.mp4 inside the video folder; here
#      mylist.txt lists absolute paths so the corpus stays untouched: same list)
#   2. extract every frame, squashed to 224x224, as JPEG with ffmpeg's defaults:
#        ffmpeg -i output.mp4 -s 224x224 frames/thumb%06d.jpg
#      (numbered from 1; the image2 muxer makes ffmpeg use constant frame rate,
#      so it duplicates or drops frames where timestamps leave holes)
#   3. bench/video_label.py copies each frame into Data/{Training|Validation|Test}/{label}/
#      by the subject's label,start,end CSV (times -> frames as round(t * fps)
#      with the nominal fps; subjects 1..N-2 Training, N-1 Validation, N Test)
#   4. MXNet's tools/im2rec.py (mxnet.test_utils.get_im2rec_path(), MXNet venv
#      of scripts/venv.sh) per split: a .lst with --list --recursive (class ids
#      = the split's class folders in sorted order), then packed with the
#      default options (re-encode with OpenCV at quality 95, 1 thread, shuffled):
#        python im2rec.py --list --recursive rec/Training Data/Training
#        python im2rec.py rec/Training Data/Training
# Everything runs one step after the other, one subject after the other, as
# the researcher's notebook did. WORK is made (it must not exist, or be empty);
# it ends up holding subjectK/{mylist.txt,output.mp4,frames/,*.log}, Data/ and
# rec/{Training,Validation,Test}.{lst,rec,idx}. ffmpeg's and im2rec.py's
# messages go to WORK/logs/. bench/video.sh times this script as a whole.
# Usage: bench/video_peer.sh CORPUS WORK
#   MXNET_PY=path/to/python   the MXNet venv's python (default: scripts/venv.sh mxnet)
#   FFMPEG=ffmpeg
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,/^# Usage/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$(cd "$1" && pwd)"
mkdir -p "$2"
work="$(cd "$2" && pwd)"
[ -z "$(ls -A "$work")" ] || { echo "video_peer.sh: $work is not empty" >&2; exit 2; }
ffmpeg="${FFMPEG:-ffmpeg}"
py="${MXNET_PY:-$("$here/../scripts/venv.sh" mxnet)}"
im2rec="$("$py" -c 'import mxnet.test_utils as t; print(t.get_im2rec_path())' 2>/dev/null)"
fps="$(python3 -c 'import json, sys; from fractions import Fraction
print(float(Fraction(json.load(open(sys.argv[1]))["fps"])))' "$corpus/meta.json")"
mkdir -p "$work/logs"

while IFS= read -r dir; do
  subject="$(basename "$dir")"
  mkdir -p "$work/$subject/frames"
  cd "$work/$subject"
  printf "file '%s'\n" "$dir"/*.mp4 > mylist.txt
  "$ffmpeg" -nostdin -f concat -safe 0 -i mylist.txt -c copy output.mp4 2> "$work/logs/$subject-concat.log"
  "$ffmpeg" -nostdin -i output.mp4 -s 224x224 frames/thumb%06d.jpg 2> "$work/logs/$subject-frames.log"
done < <(find "$corpus/videos" -mindepth 1 -maxdepth 1 -type d -name 'subject*' | sort -V)

python3 "$here/video_label.py" "$corpus/labels" "$work" --fps "$fps" > "$work/logs/label.log"

cd "$work"
mkdir -p rec
for split in Training Validation Test; do
  [ -d "Data/$split" ] || continue
  "$py" "$im2rec" --list --recursive "rec/$split" "Data/$split" > "logs/im2rec-$split-list.log" 2>&1
  "$py" "$im2rec" "rec/$split" "Data/$split" > "logs/im2rec-$split.log" 2>&1
done
