// Checkpoint files: fg.save and fg.load in the safetensors format. A write goes to a temporary file in
// the same folder that is then renamed over the target, so a crash never leaves a half-written checkpoint.

import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { DeserializeOptions, Metadata, SafetensorsContents, deserialize, serialize } from './safetensors.js';

export interface SaveOptions {
  /** String metadata stored in the header's "__metadata__" map. */
  metadata?: Metadata;
}

export type LoadOptions = DeserializeOptions;

/** The metadata keys under which an optimizer's non-tensor state is stored. */
const KIND_KEY = 'fusegrad.kind';
const OPTIMIZER_KEY = 'fusegrad.optimizer';

function isOptimizerState(value: unknown): value is OptimizerStateDict {
  return value !== null && typeof value === 'object' && Array.isArray((value as OptimizerStateDict).paramGroups) &&
    typeof (value as OptimizerStateDict).state === 'object';
}

/**
 * Splits an optimizer state dict into tensors named `state.<index>.<name>` and one metadata entry
 * holding the groups' hyperparameters and the numeric state (such as step) as JSON.
 */
function flattenOptimizerState(dict: OptimizerStateDict): { tensors: Record<string, Tensor>; metadata: Metadata } {
  const tensors: Record<string, Tensor> = {};
  const scalars: Record<string, Record<string, number>> = {};
  for (const [index, state] of Object.entries(dict.state)) {
    scalars[index] = {};
    for (const [name, value] of Object.entries(state)) {
      if (value instanceof Tensor) tensors[`state.${index}.${name}`] = value;
      else scalars[index][name] = value;
    }
  }
  return { tensors, metadata: { [KIND_KEY]: 'optimizer', [OPTIMIZER_KEY]: JSON.stringify({ paramGroups: dict.paramGroups, scalars }) } };
}

/**
 * Writes a state dict (model.stateDict() or optimizer.stateDict()) to `path` as safetensors. Tensors are
 * read back from their device. The file is replaced atomically: a temporary file in the same folder is
 * written, flushed and renamed over `path`.
 */
export async function save(state: Record<string, Tensor> | OptimizerStateDict, path: string, options: SaveOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('save: path must be a non-empty string');
  let tensors = state as Record<string, Tensor>;
  let metadata = options.metadata ?? {};
  if (isOptimizerState(state)) {
    const flat = flattenOptimizerState(state);
    tensors = flat.tensors;
    metadata = { ...metadata, ...flat.metadata };
  }
  const bytes = await serialize(tensors, metadata, 'save');
  await writeAtomically(path, bytes);
}

async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temporary, 'wx');
  } catch (error) {
    throw new Error(`save: cannot write to the folder of '${path}': ${(error as Error).message}`);
  }
  try {
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close();
    await unlink(temporary).catch(() => undefined);
    throw new Error(`save: writing '${path}' failed: ${(error as Error).message}`);
  }
}

async function readBytes(op: string, path: string): Promise<Uint8Array> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`${op}: path must be a non-empty string`);
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${op}: no file at '${path}'`);
    throw new Error(`${op}: cannot read '${path}': ${(error as Error).message}`);
  }
}

/** Reads a safetensors file into tensors on `options.device` (the default device unless given) and its metadata. */
export async function loadFile(path: string, options: LoadOptions = {}): Promise<SafetensorsContents> {
  const bytes = await readBytes('load', path);
  try {
    return deserialize(bytes, options, 'load');
  } catch (error) {
    throw new Error(`${(error as Error).message} ('${path}')`);
  }
}

/** Reads a safetensors file into a state dict of tensors by name, on `options.device` (the default device unless given). */
export async function load(path: string, options: LoadOptions = {}): Promise<Record<string, Tensor>> {
  return (await loadFile(path, options)).tensors;
}

/** Reads an optimizer state written by fg.save(optimizer.stateDict(), path); pass the result to optimizer.loadStateDict. */
export async function loadOptimizerState(path: string, options: LoadOptions = {}): Promise<OptimizerStateDict> {
  const { tensors, metadata } = await loadFile(path, options);
  const release = () => Object.values(tensors).forEach((t) => t.dispose());
  if (metadata[KIND_KEY] !== 'optimizer' || metadata[OPTIMIZER_KEY] === undefined) {
    release();
    throw new Error(`loadOptimizerState: '${path}' holds no optimizer state (its metadata lacks '${KIND_KEY}': 'optimizer'); was it written by fg.save(optimizer.stateDict(), path)?`);
  }
  let parsed: { paramGroups: OptimizerStateDict['paramGroups']; scalars: Record<string, Record<string, number>> };
  try {
    parsed = JSON.parse(metadata[OPTIMIZER_KEY]);
  } catch (error) {
    release();
    throw new Error(`loadOptimizerState: the optimizer metadata in '${path}' is not valid JSON (${(error as Error).message})`);
  }
  const state: Record<string, ParamState> = {};
  for (const [index, scalars] of Object.entries(parsed.scalars ?? {})) state[index] = { ...scalars };
  for (const [key, t] of Object.entries(tensors)) {
    const match = /^state\.(\d+)\.(.+)$/.exec(key);
    if (!match) {
      release();
      throw new Error(`loadOptimizerState: unexpected tensor '${key}' in '${path}'; optimizer tensors are named state.<index>.<name>`);
    }
    (state[match[1]] ??= {})[match[2]] = t;
  }
  return { state, paramGroups: parsed.paramGroups };
}
