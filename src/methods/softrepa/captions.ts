// SoftREPA's captions at small scale (issue 12, item 4): the paper trains on COCO captions; here a
// caption is written from the image's class name and an attribute with a template, e.g.
// "a photo of a plain ankle boot". Words are lower-cased and split on spaces, '/' and '-'; the
// vocabulary is every word of the templates, attributes and class names, sorted, after two special
// ids (0 = pad, 1 = begin). A caption is `maxTokens` ids: begin, its words, pads. The null caption
// (classifier-free guidance's unconditional branch, class index numClasses) is begin and pads only.
// The attributes say nothing true about an image (Fashion-MNIST is grey and centred): they are
// words the model must learn to ignore, so the class name is the caption's only signal.
// Not here: the text encoder (textEncoder.ts), the drawing of templates (index.ts draw).
import { FASHION_MNIST_CLASSES } from '../../data/fashionMnist.ts';

export const PAD = 0;
export const BEGIN = 1;

/** `{a}` the attribute, `{c}` the class name. The first is the caption a label samples with. */
export const TEMPLATES = [
  'a photo of a {c}',
  'a photo of a {a} {c}',
  'a {a} {c}',
  'an image of a {a} {c}',
  'a picture of a {c} on black',
  'a small {a} {c}',
] as const;

export const ATTRIBUTES = ['plain', 'simple', 'grey', 'dark', 'light', 'worn', 'new', 'classic'] as const;

export const DEFAULT_CLASS_NAMES: readonly string[] = FASHION_MNIST_CLASSES;

export const words = (s: string): string[] => s.toLowerCase().split(/[\s/-]+/).filter((w) => w.length > 0);

/** The word vocabulary of captions over these class names; index = token id. */
export class CaptionVocab {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(readonly classNames: readonly string[], readonly maxTokens: number) {
    if (classNames.length === 0) throw new Error('softrepa.class_names must name at least one class');
    const all = new Set<string>();
    for (const t of TEMPLATES) for (const w of words(t.replace('{a}', '').replace('{c}', ''))) all.add(w);
    for (const a of ATTRIBUTES) all.add(a);
    for (const c of classNames) for (const w of words(c)) all.add(w);
    this.words = ['<pad>', '<begin>', ...[...all].sort()];
    this.ids = new Map(this.words.map((w, i) => [w, i]));
    const longest = Math.max(...TEMPLATES.flatMap((t) => classNames.map((c) => 1 + words(fill(t, ATTRIBUTES[0], c)).length)));
    if (maxTokens < longest) throw new Error(`softrepa.max_tokens is ${maxTokens} but the longest caption needs ${longest} (begin + words)`);
  }

  get size(): number { return this.words.length; }

  /** The caption's text for class `label` with template and attribute indices. */
  text(label: number, template: number, attribute: number): string {
    const t = TEMPLATES[template], a = ATTRIBUTES[attribute];
    if (t === undefined) throw new Error(`caption template ${template} is not in 0..${TEMPLATES.length - 1}`);
    if (a === undefined) throw new Error(`caption attribute ${attribute} is not in 0..${ATTRIBUTES.length - 1}`);
    const c = this.classNames[label];
    if (c === undefined) throw new Error(`caption label ${label} is not a class in 0..${this.classNames.length - 1}`);
    return fill(t, a, c);
  }

  /** maxTokens ids: begin, the words of `text`, pads. */
  encode(text: string): Int32Array {
    const out = new Int32Array(this.maxTokens).fill(PAD);
    const ws = words(text);
    if (ws.length + 1 > this.maxTokens) throw new Error(`caption '${text}' has ${ws.length} words; max_tokens ${this.maxTokens} holds ${this.maxTokens - 1}`);
    out[0] = BEGIN;
    ws.forEach((w, i) => {
      const id = this.ids.get(w);
      if (id === undefined) throw new Error(`caption word '${w}' is not in the vocabulary`);
      out[i + 1] = id;
    });
    return out;
  }

  /** (B·maxTokens) ids for labels: label numClasses (or dropped) is the null caption; else the template/attribute caption. */
  batch(labels: ArrayLike<number>, template?: ArrayLike<number>, attribute?: ArrayLike<number>): Int32Array {
    const n = this.maxTokens, out = new Int32Array(labels.length * n);
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i];
      if (l === this.classNames.length) { out[i * n] = BEGIN; continue; }
      out.set(this.encode(this.text(l, template?.[i] ?? 0, attribute?.[i] ?? 0)), i * n);
    }
    return out;
  }
}

function fill(t: string, a: string, c: string): string {
  return t.replace('{a}', a).replace('{c}', c);
}
