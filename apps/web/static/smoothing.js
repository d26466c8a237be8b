// The smoothed headline: the same rule and wording as the desktop webcam app
// (apps/webcam/smoothing.py ScoreSmoother/decide, apps/webcam/overlay.py _headline).

export class ScoreSmoother {
  // alpha: weight of the newest frame, in (0, 1]; 1 turns smoothing off.
  constructor(alpha = 0.4) {
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`smoothing alpha must be in (0, 1]; received ${alpha}`);
    this.alpha = alpha;
    this.state = null;
  }

  update(scores) {
    if (this.state === null || this.state.length !== scores.length) {
      this.state = Float32Array.from(scores);
    } else {
      const a = Math.fround(this.alpha);
      for (let i = 0; i < scores.length; i++) {
        this.state[i] = a * scores[i] + (1 - a) * this.state[i];
      }
    }
    return this.state;
  }

  reset() {
    this.state = null;
  }
}

// {label (null: uncertain), index, score, multilabel}
export function decide(smoothed, labels, threshold, multilabel = false) {
  let index = 0;
  for (let i = 1; i < smoothed.length; i++) if (smoothed[i] > smoothed[index]) index = i;
  const score = smoothed[index];
  if (multilabel) {
    const present = [...smoothed.keys()]
      .filter((i) => smoothed[i] >= threshold)
      .sort((a, b) => smoothed[b] - smoothed[a] || a - b);
    const label = present.map((i) => labels[i]).join(" + ") || null;
    return { label, index, score, multilabel: true };
  }
  return { label: score >= threshold ? labels[index] : null, index, score, multilabel: false };
}

// [text, uncertain]: the word "smoothed" says why it can differ from this frame's bars.
export function headline(decision, threshold, smoothing) {
  const word = smoothing < 1 ? "smoothed" : "score";
  const t = threshold.toFixed(2);
  const s = decision.score.toFixed(2);
  // A score under the threshold is cut, not rounded, to two places (0.4996 read "0.50 < 0.50").
  const below = (Math.floor(decision.score * 100 + 1e-9) / 100).toFixed(2);
  if (decision.label === null && decision.multilabel) return [`no class >= ${t} (${word} best ${below})`, true];
  if (decision.label === null) return [`uncertain: ${word} ${below} < ${t}`, true];
  return [`${decision.label}  ${s} ${word}`, false];
}
