// Dim coalescing for strided kernels. Fewer dims mean fewer integer divisions per element, which are the
// slow part of a strided kernel on CPU adapters because lavapipe divides one lane at a time.

/**
 * Merges neighbouring dims that every operand walks as one (stride[d] = stride[d + 1] * shape[d + 1] in
 * each of `strides`) and drops dims of size 1. Returns the new shape and one stride list per operand.
 * Element i of the result, in row-major order, is at the same memory location as element i of the original.
 */
export function coalesceDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [1]) };
  return { shape: outShape, strides: outStrides };
}
