"""Real-size data: where the time and memory go (a script, not a test).

    python benchmarks/bench_realsize.py [--root /tmp/realsize] [--clips 255] [--samm-clips 20] [--repeats 5]

Builds two trees itself, in the datasets' real layouts, and reuses them on later runs:

- CASME II: the coding sheet's clips (labels, subjects and relative key-frame positions
  from the synth-casme2 twin; each onset -> offset span stretched by the ratio of the
  real selection's mean clip length, 19,684 / 255 frames, to the twin's mean span plus
  the 11 frames of margin: 16,718 frames in all, 85 % of the real onset-5 ... offset+5
  selection), 640x480 JPEG frames of the
  raw layout, ``CASME2_RAW_selected/subXX/EPxx/img<N>.jpg`` with absolute frame numbers
  (the loader detects and crops the face, as it does for the real raw frames);
- SAMM: ``--samm-clips`` clips at 2040x1088, the face off-centre in the wide frame.

Every frame shows a photographed face (scikit-image's public-domain ``astronaut``, which
OpenCV's Haar cascade finds) whose lower face moves by 1-3 px towards the apex, in an
emotion-dependent direction. Then it prints, one line each (wall s, CPU s, peak RSS MiB,
each command in a fresh process):

1. ``mer-bench run --method flow-svm --protocol loso --dataset casme2`` from a cold
   cache (feature cache and memos) and again warm, against a minimal loop (cv2 +
   scikit-learn) that reads only the onset and apex frames, finds the face on the onset
   frame downscaled to a 240 px shorter side, computes Farneback flow at 64 px, pools it
   on an 8x8 grid and runs a LOSO linear SVM;
2. the feature phase of a sequence spec (LightmanNet's 6-frame ``FrameSequence`` at
   32 px, cold) against a loop that decodes only the frames that resampling reads;
3. the same feature phase on 20 clips and on the same 20 clips twice as long (peak RSS;
   a second tree, ``casme2-long``);
4. SAMM: attr-contrast's two ``fast`` input specs on every clip (s/clip, peak RSS);
5. face detection at shorter sides from full size down to 80 px: faces found (on the
   pasted head) and ms per frame, on CASME II and SAMM onset frames (how
   ``mer_bench.data.faces.DETECT_SIDE`` was chosen);
6. SAMM: the largest per-cell flow magnitude at 64 px from the whole frame
   (``--face-crop none``) and from the face crop (the default).

The figures belong to the machine it runs on; README's speed table says which.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

CASME2_FRAMES = 19_684
"""Frames of the real CASME II selection (255 clips, onset-5 ... offset+5)."""
EMOTION_SHIFT = {"happiness": (0.0, -1.0), "disgust": (1.0, 0.0), "repression": (-1.0, 0.0),
                 "surprise": (0.0, 1.0), "others": (0.7, 0.7), "fear": (-0.7, 0.7),
                 "sadness": (0.0, 0.6), "anger": (0.6, -0.6), "contempt": (-0.6, -0.6),
                 "other": (0.7, -0.7)}


@lru_cache(maxsize=1)
def face() -> np.ndarray:
    """The astronaut's head and shoulders, BGR uint8 (about 300 x 260)."""
    from skimage import data
    return cv2.cvtColor(data.astronaut()[0:300, 110:370], cv2.COLOR_RGB2BGR)


def render(canvas: tuple[int, int], where: tuple[int, int], scale: float, shift: tuple[float, float]
           ) -> np.ndarray:
    """One frame: grey background, the face at ``where`` (x, y) scaled by ``scale``, its
    lower half displaced by ``shift`` px (dx, dy) with a smooth falloff."""
    w, h = canvas
    head = cv2.resize(face(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 120, np.uint8)
    x, y = where
    frame[y:y + head.shape[0], x:x + head.shape[1]] = head
    if shift == (0.0, 0.0):
        return frame
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = np.array([x + head.shape[1] / 2, y + head.shape[0] * 0.62])
    weight = np.exp(-(((grid_x - centre[0]) / (0.25 * head.shape[1])) ** 2
                      + ((grid_y - centre[1]) / (0.18 * head.shape[0])) ** 2)).astype(np.float32)
    return cv2.remap(frame, grid_x - shift[0] * weight, grid_y - shift[1] * weight,
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def clip_frames(n: int, onset: int, apex: int, offset: int, emotion: str, amplitude: float,
                canvas, where, scale) -> list[np.ndarray]:
    """``n`` frames: still outside [onset, offset], a raised-cosine motion peaking at apex."""
    direction = np.array(EMOTION_SHIFT.get(emotion, (0.5, 0.5)))
    frames = []
    for t in range(n):
        if onset <= t <= offset:
            side = (t - onset) / max(apex - onset, 1) if t <= apex else (offset - t) / max(offset - apex, 1)
            strength = amplitude * 0.5 * (1 - np.cos(np.pi * np.clip(side, 0, 1)))
        else:
            strength = 0.0
        frames.append(render(canvas, where, scale, tuple(float(v) for v in direction * strength)))
    return frames


def write_sheet(path: Path, sheet: str, preamble: list[list], columns: list, records: list) -> None:
    import openpyxl
    book = openpyxl.Workbook()
    book.active.title = sheet
    for line in preamble + [columns] + records:
        book.active.append(line)
    book.save(path)


def build_casme2(root: Path, clips: int, factor: float = 1.0) -> Path:
    from mer_bench.data.datasets import load_dataset
    if (root / "CASME2-coding-20190701.xlsx").exists():
        return root
    rows = load_dataset("synth-casme2").samples.head(clips)
    stretch = factor * CASME2_FRAMES / 255 / float((rows["offset"] - rows["onset"] + 11).mean())
    records = []
    for k, r in enumerate(rows.itertuples()):
        onset, offset = 5, 5 + int(round((r.offset - r.onset) * stretch))
        apex = onset + int(round(((r.onset if pd.isna(r.apex) else r.apex) - r.onset) * stretch))
        n, first = offset + 6, 40 + k % 7
        subject = r.subject.split("/")[1]
        folder = root / "CASME2_RAW_selected" / subject / r.clip
        folder.mkdir(parents=True, exist_ok=True)
        amplitude = 1.0 + 2.0 * ((k * 37) % 100) / 100
        for t, frame in enumerate(clip_frames(n, onset, apex, offset, r.emotion, amplitude,
                                              (640, 480), (190, 90), 1.0)):
            cv2.imwrite(str(folder / f"img{first + t}.jpg"), frame)
        records.append([int(subject[3:]), r.clip, None, first + onset, first + apex,
                        first + offset, None, r.aus, r.emotion])
    write_sheet(root / "CASME2-coding-20190701.xlsx", "Sheet1", [],
                ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion"], records)
    return root


def build_samm(root: Path, clips: int) -> Path:
    from mer_bench.data.datasets import load_dataset
    if (root / "SAMM_Micro_FACS_Codes_v2.xlsx").exists():
        return root
    rows = load_dataset("synth-samm").samples.head(clips)
    records = []
    for k, r in enumerate(rows.itertuples()):
        subject = r.subject.split("/")[1]
        n, first = int(r.n_frames), 5000 + k
        folder = root / "SAMM" / subject / r.clip
        folder.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(clip_frames(n, int(r.onset), int(r.apex), int(r.offset),
                                              r.emotion, 3.0, (2040, 1088), (1250, 180), 2.2)):
            cv2.imwrite(str(folder / f"{subject}_{first + t:05d}.jpg"), frame)
        records.append([int(subject), r.clip, "A", first + int(r.onset), first + int(r.apex),
                        first + int(r.offset), int(r.offset) - int(r.onset) + 1, "Micro - 1/2",
                        r.aus, r.emotion.capitalize(), "", ""])
    write_sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", "MICRO_ONLY",
                [[f"preamble {i}"] for i in range(13)],
                ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
                 "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
                 "Objective Classes", "Notes"], records)
    return root


MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"wall": time.perf_counter() - start,
                      "cpu": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                      "rss_mib": after.ru_maxrss / 1024}))
""")


def measure(command: list[str], env: dict | None = None) -> dict:
    """Wall and CPU seconds and peak RSS of ``command`` in a fresh process; ``said``:
    the last line the command wrote to stderr."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True,
                         capture_output=True, text=True, env=env)
    said = out.stderr.strip().splitlines()
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"said": said[-1] if said else ""}


LOOP_PRELUDE = textwrap.dedent("""
    import sys, os
    import cv2, numpy as np, pandas as pd
    cv2.setNumThreads(1)
    root = sys.argv[1]
    sheet = pd.read_excel(os.path.join(root, "CASME2-coding-20190701.xlsx"))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    def face(image, side=240):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = side / min(gray.shape)
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = cascade.detectMultiScale(small, 1.1, 5, minSize=(30, 30))
        return [int(v / scale) for v in max(faces, key=lambda f: f[2] * f[3])]
    def frame(subject, clip, number):
        folder = os.path.join(root, "CASME2_RAW_selected", f"sub{int(subject):02d}", clip)
        return cv2.imread(os.path.join(folder, f"img{number}.jpg"))
""")
"""What both minimal loops share: the sheet, and the face found on a frame downscaled
to a 240 px shorter side (as mer-bench does)."""

MINIMAL_FLOW_SVM = LOOP_PRELUDE + textwrap.dedent("""
    from sklearn.svm import LinearSVC
    from sklearn.preprocessing import StandardScaler
    from sklearn.metrics import f1_score
    X, y, groups = [], [], []
    for r in sheet.itertuples():
        if r[9] not in ("happiness", "disgust", "repression", "surprise", "others"):
            continue
        onset, apex = (frame(r[1], r[2], n) for n in (r[4], r[5]))
        x, yy, w, h = face(onset)
        crop = [cv2.resize(cv2.cvtColor(im[yy:yy + h, x:x + w], cv2.COLOR_BGR2GRAY), (64, 64),
                           interpolation=cv2.INTER_AREA) for im in (onset, apex)]
        flow = cv2.calcOpticalFlowFarneback(crop[0], crop[1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        X.append(flow.reshape(8, 8, 8, 8, 2).mean((1, 3)).ravel()); y.append(r[9]); groups.append(r[1])
    X, y, groups = np.array(X), np.array(y), np.array(groups)
    pred = np.empty(len(y), object)
    for g in np.unique(groups):
        test = groups == g
        scaler = StandardScaler().fit(X[~test])
        pred[test] = LinearSVC(C=0.05).fit(scaler.transform(X[~test]), y[~test]).predict(scaler.transform(X[test]))
    print(f1_score(y, pred, average="macro"))
""")

SEQUENCE_PHASE = textwrap.dedent("""
    import sys
    from mer_bench.data.datasets import load_dataset
    from mer_bench.features.cache import FeatureCache
    from mer_bench.features.specs import FrameSequence
    dataset = load_dataset(sys.argv[1])
    rows = dataset.samples.head(int(sys.argv[2]))
    FeatureCache(None).materialize(dataset, rows, FrameSequence(length=6, size=32), progress=False)
""")

MINIMAL_SEQUENCE = LOOP_PRELUDE + textwrap.dedent("""
    for r in sheet.head(int(sys.argv[2])).itertuples():
        x, y, w, h = face(frame(r[1], r[2], r[4]))
        positions = np.linspace(r[4], r[5], 6)
        low = np.floor(positions).astype(int)
        high = np.minimum(low + 1, r[5])
        crops = {n: cv2.resize(frame(r[1], r[2], n)[y:y + h, x:x + w], (32, 32),
                               interpolation=cv2.INTER_AREA) for n in set(low) | set(high)}
        weight = (positions - low)[:, None, None, None]
        clip = np.stack([crops[n] for n in low]) * (1 - weight) + np.stack([crops[n] for n in high]) * weight
""")

ATTR_PHASE = textwrap.dedent("""
    import resource, sys, time
    from mer_bench.data.datasets import load_dataset
    from mer_bench.features.cache import FeatureCache
    from mer_bench.methods import build_method
    specs = build_method("attr-contrast", "fast").input_specs
    dataset = load_dataset("samm")
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    FeatureCache(None).materialize_all(dataset, dataset.samples, specs, progress=False)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print((time.perf_counter() - start) / len(dataset.samples), grown, file=sys.stderr)
""")
"""Prints the feature phase's seconds per clip and how much it raised the peak RSS (MiB)
above what loading the adapter (torch, transformers) and the dataset took."""


def median(figures: list[dict]) -> dict:
    """Per-figure median of several ``measure`` results (wall, CPU, RSS)."""
    return {key: float(np.median([f[key] for f in figures])) for key in ("wall", "cpu", "rss_mib")}


def line(label: str, figures: dict, reference: dict | None = None) -> str:
    ratio = "" if reference is None else (f"  ({figures['wall'] / reference['wall']:.2f}x wall, "
                                          f"{figures['cpu'] / reference['cpu']:.2f}x CPU)")
    return (f"{label:58s} wall {figures['wall']:7.1f} s  CPU {figures['cpu']:7.1f} s  "
            f"peak RSS {figures['rss_mib']:7.0f} MiB{ratio}")


def samm_signal(root: Path) -> str:
    """Largest per-cell (8x8) Farneback flow magnitude at 64 px between onset and apex as
    mer-bench reads SAMM: the whole frame (``face_crop="none"``) against the face crop
    (the default), medians over clips."""
    import os
    os.environ["MER_BENCH_DATA_ROOTS"] = f"samm={root}"
    from mer_bench.data.datasets import load_dataset
    out = {}
    for mode in ("none", "detect"):
        dataset, peaks = load_dataset("samm", face_crop=mode), []
        for row in dataset.samples.itertuples():
            pair = dataset.frames(row.sample_id, np.array([row.onset, int(row.apex)]), 64)
            gray = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in pair]
            flow = cv2.calcOpticalFlowFarneback(gray[0], gray[1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
            peaks.append(float(np.linalg.norm(flow.reshape(8, 8, 8, 8, 2).mean((1, 3)), axis=-1).max()))
        out[mode] = np.median(peaks)
    return (f"SAMM largest per-cell flow at 64 px (median of {len(peaks)} clips): whole frame "
            f"{out['none']:.3f} px, face crop (default) {out['detect']:.3f} px")


SIDES = (None, 480, 320, 240, 160, 120, 80)
"""Shorter sides (px) the face detector is tried at; None: the frame as stored."""


def detection_sweep(casme2: Path, samm: Path, clips: int = 34) -> list[str]:
    """For each of ``SIDES``: how many onset frames (``clips`` of CASME II, every SAMM
    clip) the cascade finds the face on, within the pasted head, and ms per frame."""
    import time

    from mer_bench.data.faces import detect
    heads = {casme2: ((190, 90), 1.0), samm: ((1250, 180), 2.2)}
    frames = []
    for root, ((x, y), scale) in heads.items():
        for folder in sorted(root.glob("*/*/*"))[:clips]:
            onset = sorted(folder.glob("*.jpg"))[5]
            head = (x, y, x + face().shape[1] * scale, y + face().shape[0] * scale)
            frames.append((cv2.imread(str(onset), cv2.IMREAD_GRAYSCALE), head))
    out = []
    for side in SIDES:
        found, start = 0, time.perf_counter()
        for gray, (x0, y0, x1, y1) in frames:
            box = detect(gray, side or max(gray.shape))
            found += box is not None and x0 <= box[0] + box[2] / 2 <= x1 and y0 <= box[1] + box[3] / 2 <= y1
        ms = 1000 * (time.perf_counter() - start) / len(frames)
        out.append(f"face detection at {'full size' if side is None else f'{side} px':>9s}: "
                   f"{found}/{len(frames)} faces found, {ms:6.1f} ms per frame")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/mer-bench-realsize"))
    parser.add_argument("--clips", type=int, default=255)
    parser.add_argument("--samm-clips", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each flow-svm command (the medians are printed)")
    args = parser.parse_args()
    import os
    import tempfile
    casme2 = build_casme2(args.root / "casme2", args.clips)
    samm = build_samm(args.root / "samm", args.samm_clips)
    n_frames = sum(1 for _ in casme2.glob("CASME2_RAW_selected/*/*/*.jpg"))
    size = sum(p.stat().st_size for p in casme2.glob("CASME2_RAW_selected/*/*/*.jpg")) / 2**30
    print(f"CASME II tree: {args.clips} clips, {n_frames} frames, {size:.2f} GiB at {casme2}")
    env = {**os.environ, "MER_BENCH_DATA_ROOTS": f"casme2={casme2};samm={samm}",
           "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        def cold(name: str) -> dict:
            """``env`` with a memo folder (file digests, clip checks) of its own."""
            return {**env, "MER_BENCH_CACHE": f"{scratch}/{name}"}
        runs = {"loop": [], "cold": [], "warm": []}
        for k in range(args.repeats):  # interleaved, so that a slow spell hits all three
            command = ["mer-bench", "run", "--method", "flow-svm", "--protocol", "loso",
                       "--dataset", "casme2", "--preset", "fast", "--quiet", "--out",
                       f"{scratch}/out{k}", "--cache-dir", f"{scratch}/cache{k}"]
            runs["loop"].append(measure([sys.executable, "-c", MINIMAL_FLOW_SVM, str(casme2)], env))
            runs["cold"].append(measure(command, cold(f"run{k}")))
            runs["warm"].append(measure(command + ["--fresh"], cold(f"run{k}")))
        loop, first, again = (median(runs[name]) for name in ("loop", "cold", "warm"))
        print(f"flow-svm: medians of {args.repeats} interleaved runs; cold / loop wall ratios "
              + ", ".join(f"{c['wall'] / m['wall']:.2f}" for c, m in zip(runs["cold"], runs["loop"])))
        print(line("minimal cv2 + scikit-learn flow-svm loop", loop))
        print(line("mer-bench flow-svm loso, cold cache", first, loop))
        print(line("mer-bench flow-svm loso, warm cache", again, loop))
        needed = measure([sys.executable, "-c", MINIMAL_SEQUENCE, str(casme2), str(args.clips)], env)
        sequence = measure([sys.executable, "-c", SEQUENCE_PHASE, "casme2", str(args.clips)],
                           cold("sequence"))
        print(line("only-needed-frames loop, 6-frame sequence at 32 px", needed))
        print(line("mer-bench FrameSequence(6, 32) feature phase", sequence, needed))
        long = build_casme2(args.root / "casme2-long", 20, factor=2.0)
        for label, root in (("20 clips", casme2), ("the same 20 clips, twice as long", long)):
            figures = measure([sys.executable, "-c", SEQUENCE_PHASE, "casme2", "20"],
                              {**cold(f"memory-{root.name}"), "MER_BENCH_DATA_ROOTS": f"casme2={root}"})
            print(line(f"feature phase memory: {label}", figures))
        attr = measure([sys.executable, "-c", ATTR_PHASE], cold("attr"))
        per_clip, grown = (float(v) for v in attr["said"].split())
        print(line(f"SAMM: attr-contrast fast inputs, {args.samm_clips} clips", attr)
              + f"  feature phase {per_clip:.2f} s/clip, +{grown:.0f} MiB peak")
    print("\n".join(detection_sweep(casme2, samm)))
    print(samm_signal(samm))


if __name__ == "__main__":
    main()
