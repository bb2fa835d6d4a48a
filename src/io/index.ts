// fg.io: the safetensors encoding on its own, for bytes that do not come from or go to a file.

export { serialize, deserialize, parseHeader } from './safetensors.js';
export type { Metadata, DeserializeOptions, SafetensorsContents } from './safetensors.js';
export { loadFile } from './checkpoint.js';
