// Shapes, strides and broadcasting. A tensor is a strided view into a flat storage:
// element [i0, i1, ...] lives at offset + i0 * strides[0] + i1 * strides[1] + ...

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== s) return false;
    s *= shape[i];
  }
  return true;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Returns the broadcast shape of several shapes with NumPy's rules, or throws naming the op. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const shape of shapes) {
    for (let i = 0; i < shape.length; i++) {
      const j = rank - shape.length + i;
      const d = shape[i];
      if (d === out[j] || d === 1) continue;
      if (out[j] === 1) {
        out[j] = d;
        continue;
      }
      throw new Error(
        `${op}: shapes ${shapes.map(formatShape).join(' and ')} cannot be broadcast together ` +
          `(dimension ${j - rank} is ${out[j]} in one and ${d} in another); ` +
          `make the sizes equal or 1, for example with reshape or unsqueeze`,
      );
    }
  }
  return out;
}

/** Returns `dim` as a non-negative index into a shape of rank `rank`, accepting negative dims as PyTorch does. */
export function normalizeDim(op: string, dim: number, rank: number): number {
  const lo = rank === 0 ? -1 : -rank;
  const hi = rank === 0 ? 0 : rank - 1;
  if (!Number.isInteger(dim) || dim < lo || dim > hi) {
    throw new RangeError(`${op}: dim ${dim} is out of range for a tensor of rank ${rank} (expected ${lo} to ${hi})`);
  }
  return dim < 0 ? dim + Math.max(rank, 1) : dim;
}

/** Returns sorted, unique, non-negative dims; undefined means every dim. */
export function normalizeDims(op: string, dims: number | readonly number[] | undefined, rank: number): number[] {
  if (dims === undefined) return [...Array(rank).keys()];
  const list = typeof dims === 'number' ? [dims] : [...dims];
  const out = list.map((d) => normalizeDim(op, d, rank));
  const repeated = out.find((d, i) => out.indexOf(d) !== i);
  if (repeated !== undefined) {
    throw new Error(`${op}: dims ${formatShape(list)} name dimension ${repeated} more than once; list each dimension once`);
  }
  return out.sort((a, b) => a - b);
}

export function checkShape(op: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(`${op}: invalid shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
  }
  return [...shape];
}
