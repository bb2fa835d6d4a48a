// Data types, their storage arrays and the promotion rules of binary ops.

export type DType = 'float16' | 'float32' | 'float64' | 'int32' | 'bool';

export const DTYPES: readonly DType[] = ['bool', 'int32', 'float16', 'float32', 'float64'];

export type TypedArray = Float64Array | Float32Array | Int32Array | Uint8Array | Uint16Array;

export function isFloating(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'float32' || dtype === 'float64';
}

export function checkDType(op: string, dtype: unknown): DType {
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new TypeError(`${op}: unknown dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(', ')}`);
  }
  return dtype as DType;
}

const RANK: Record<DType, number> = { bool: 0, int32: 1, float16: 2, float32: 3, float64: 4 };

/** Returns the result dtype of a binary op on two tensors, as torch.result_type does. */
export function promoteTypes(a: DType, b: DType): DType {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Returns the result dtype of a tensor combined with a plain number: a number never widens a
 * floating tensor, an integer number keeps an int32 tensor, and a fractional one makes it float32.
 */
export function promoteWithScalar(dtype: DType, value: number | boolean): DType {
  if (typeof value === 'boolean') return dtype;
  if (isFloating(dtype)) return dtype;
  if (Number.isInteger(value)) return dtype === 'bool' ? 'int32' : dtype;
  return 'float32';
}

/** Returns the host array type used to hold values of `dtype` (float16 is held as float32 on the host). */
export function hostArray(dtype: DType, length: number): TypedArray {
  switch (dtype) {
    case 'float64': return new Float64Array(length);
    case 'float32': return new Float32Array(length);
    case 'float16': return new Float32Array(length);
    case 'int32': return new Int32Array(length);
    case 'bool': return new Uint8Array(length);
  }
}

/** Converts any array of numbers to the host array type of `dtype`. */
export function toHostArray(dtype: DType, values: ArrayLike<number | boolean>): TypedArray {
  const out = hostArray(dtype, values.length);
  if (dtype === 'int32') {
    for (let i = 0; i < values.length; i++) out[i] = Math.trunc(Number(values[i]));
  } else if (dtype === 'bool') {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return out;
}
