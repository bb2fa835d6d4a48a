// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON header, then the raw little-endian tensor data. The header maps each name to
// { dtype, shape, data_offsets: [begin, end] } (byte offsets into the data section) and may hold a
// "__metadata__" map of strings. The data section must be covered exactly, with no overlap and no gap.

import type { DeviceName } from '../backends/backend.js';
import { tensor } from '../ops/creation.js';
import { backend as defaultDevice } from '../runtime.js';
import { DType, TypedArray, hostArray } from '../tensor/dtype.js';
import { float16ToFloat32, float32ToFloat16 } from '../tensor/float16.js';
import { formatShape, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** The safetensors dtype code of each fusegrad dtype and its size in bytes. */
const CODES: Record<DType, { code: string; size: number }> = {
  float64: { code: 'F64', size: 8 },
  float32: { code: 'F32', size: 4 },
  int32: { code: 'I32', size: 4 },
  float16: { code: 'F16', size: 2 },
  bool: { code: 'BOOL', size: 1 },
};

const BY_CODE = new Map(Object.entries(CODES).map(([dtype, { code, size }]) => [code, { dtype: dtype as DType, size }]));

const SUPPORTED = Object.values(CODES).map((c) => c.code).join(', ');

/** The largest header accepted, as in the reference implementation (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

export type Metadata = Record<string, string>;

export interface DeserializeOptions {
  /** The device that receives the tensors (the default device unless given). */
  device?: DeviceName;
}

export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  metadata: Metadata;
}

// ---- writing ----

function checkMetadata(op: string, metadata: unknown): Metadata {
  if (metadata === undefined) return {};
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new TypeError(`${op}: metadata must be an object of strings`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new TypeError(`${op}: metadata value '${key}' must be a string, got ${typeof value}; use JSON.stringify for other values`);
  }
  return metadata as Metadata;
}

/** Encodes host values of `dtype` as little-endian bytes. */
function encodeValues(dtype: DType, values: TypedArray): Uint8Array {
  const { size } = CODES[dtype];
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  if (dtype === 'float16') {
    const bits = float32ToFloat16(values);
    for (let i = 0; i < bits.length; i++) view.setUint16(2 * i, bits[i], true);
  } else if (dtype === 'float64') {
    for (let i = 0; i < values.length; i++) view.setFloat64(8 * i, values[i], true);
  } else if (dtype === 'float32') {
    for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  } else if (dtype === 'int32') {
    for (let i = 0; i < values.length; i++) view.setInt32(4 * i, values[i], true);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  }
  return out;
}

/**
 * The order of tensors in the data section, as the reference safetensors library writes them: by dtype
 * (F64, F32, I32, F16, BOOL), then by name. Larger elements come first, so every tensor is aligned.
 */
const WRITE_ORDER: readonly DType[] = ['float64', 'float32', 'int32', 'float16', 'bool'];

/**
 * Serializes tensors (read back from their device) and optional string metadata into safetensors bytes.
 * The header is padded with spaces to a multiple of 8 bytes, so the data section starts aligned.
 */
export async function serialize(tensors: Record<string, Tensor>, metadata?: Metadata, op = 'serialize'): Promise<Uint8Array> {
  if (tensors === null || typeof tensors !== 'object') throw new TypeError(`${op}: expected an object of tensors by name`);
  const meta = checkMetadata(op, metadata);
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY || name.length === 0) throw new Error(`${op}: '${name}' cannot be a tensor name`);
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: '${name}' is not a Tensor`);
    t.assertAlive(op);
  }
  entries.sort(([a, ta], [b, tb]) => WRITE_ORDER.indexOf(ta.dtype) - WRITE_ORDER.indexOf(tb.dtype) || (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (Object.keys(meta).length > 0) header[METADATA_KEY] = meta;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = encodeValues(t.dtype, await t.toArray());
    header[name] = { dtype: CODES[t.dtype].code, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }

  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let position = 8 + json.length;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}

// ---- reading ----

interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Parses and validates the header; returns the entries in data order, the metadata and where the data starts. */
export function parseHeader(bytes: Uint8Array, op = 'deserialize'): { entries: HeaderEntry[]; metadata: Metadata; dataStart: number } {
  const fail = (why: string): never => {
    throw new Error(`${op}: invalid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`it has ${bytes.length} bytes, fewer than the 8-byte header length; the file is truncated or empty`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    fail(`the header length is ${declared} bytes, but only ${bytes.length - 8} bytes follow it; the file is truncated or not a safetensors file`);
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) fail(`the header length ${headerLength} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    fail(`the header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Metadata = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      const valid = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Object.values(raw).every((v) => typeof v === 'string');
      if (!valid) fail(`"${METADATA_KEY}" must be an object of strings`);
      metadata = raw as Metadata;
      continue;
    }
    entries.push(parseEntry(name, raw, dataLength, fail));
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: HeaderEntry | null = null;
  for (const entry of entries) {
    if (entry.begin < covered && previous) fail(`the data of tensors '${previous.name}' and '${entry.name}' overlap (bytes ${entry.begin} to ${Math.min(covered, entry.end)})`);
    if (entry.begin > covered) fail(`bytes ${covered} to ${entry.begin} of the data section belong to no tensor`);
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) fail(`the tensors cover ${covered} bytes of data, but the data section has ${dataLength} bytes`);
  return { entries, metadata, dataStart };
}

function parseEntry(name: string, raw: unknown, dataLength: number, fail: (why: string) => never): HeaderEntry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`the entry of tensor '${name}' is not an object`);
  const { dtype: code, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof code !== 'string') fail(`tensor '${name}' has no dtype`);
  const known = BY_CODE.get(code as string);
  if (!known) fail(`tensor '${name}' has dtype ${JSON.stringify(code)}, which fusegrad does not read (it reads ${SUPPORTED})`);
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}; expected an array of integers >= 0`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as number[];
  if (end > dataLength) {
    fail(`the data_offsets [${begin}, ${end}] of tensor '${name}' go beyond the ${dataLength} bytes of data; the file is truncated`);
  }
  const expected = numel(shape as number[]) * known!.size;
  if (end - begin !== expected) {
    fail(`tensor '${name}' of shape ${formatShape(shape as number[])} and dtype ${code} needs ${expected} bytes, but its data_offsets span ${end - begin}`);
  }
  return { name, dtype: known!.dtype, shape: shape as number[], begin, end };
}

/** Decodes little-endian bytes into the host array of `dtype`. */
function decodeValues(dtype: DType, bytes: Uint8Array): TypedArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.length / CODES[dtype].size;
  if (dtype === 'float16') {
    const bits = new Uint16Array(count);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true);
    return float16ToFloat32(bits);
  }
  const out = hostArray(dtype, count);
  if (dtype === 'float64') for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
  else if (dtype === 'float32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'int32') for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
  else for (let i = 0; i < count; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
  return out;
}

/** Parses safetensors bytes into tensors on `options.device` and the metadata map. Throws a clear error for a malformed file. */
export function deserialize(bytes: Uint8Array, options: DeserializeOptions = {}, op = 'deserialize'): SafetensorsContents {
  const { entries, metadata, dataStart } = parseHeader(bytes, op);
  const device = options.device ?? defaultDevice();
  const tensors: Record<string, Tensor> = {};
  try {
    for (const entry of entries) {
      const values = decodeValues(entry.dtype, bytes.subarray(dataStart + entry.begin, dataStart + entry.end));
      tensors[entry.name] = tensor(values, { shape: entry.shape, dtype: entry.dtype, device });
    }
  } catch (error) {
    for (const t of Object.values(tensors)) t.dispose();
    throw error;
  }
  return { tensors: Object.fromEntries(Object.keys(tensors).sort().map((k) => [k, tensors[k]])), metadata: { ...metadata } };
}
