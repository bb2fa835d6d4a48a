// Bind group layouts read from a kernel's WGSL, and a cache of bind groups. A dispatch over buffers seen
// before creates nothing, because a dynamic offset selects its uniforms in the shared uniform buffer.

/** The byte size of the uniform binding in every bind group, and of each dispatch's uniform slot. */
export const UNIFORM_BINDING_SIZE = 256;

const BINDING = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(uniform|storage\s*,\s*read_write|storage\s*,\s*read|storage)\s*>/g;

/**
 * Builds the bind group layout that a kernel declares: binding 0 is its uniform block, with a dynamic
 * offset, and every other binding a storage buffer, read-only unless the WGSL declares it read_write.
 */
export function layoutFromSource(device: GPUDevice, code: string, label: string): GPUBindGroupLayout {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const match of code.matchAll(BINDING)) {
    const binding = Number(match[1]);
    const access = match[2].replace(/\s+/g, '');
    let type: GPUBufferBindingType;
    if (access === 'uniform') type = 'uniform';
    else if (access === 'storage,read') type = 'read-only-storage';
    else type = 'storage';
    if (type === 'uniform' && binding !== 0) throw new Error(`kernel ${label}: the uniform block must be binding 0, found binding ${binding}`);
    entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type, hasDynamicOffset: type === 'uniform' } });
  }
  return device.createBindGroupLayout({ entries, label });
}

/**
 * Bind groups by layout and buffers. Pool buffers live as long as the backend, so an entry never goes
 * stale. The cache is cleared when it grows past `capacity`, which keeps it bounded.
 */
export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  constructor(private readonly device: GPUDevice, private readonly capacity = 8192) {}

  private id(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(object, id);
    }
    return id;
  }

  /** Returns the bind group of `layout` with `uniforms` at binding 0 and `buffers` at bindings 1, 2, ... */
  get(layout: GPUBindGroupLayout, uniforms: GPUBuffer, buffers: readonly GPUBuffer[]): GPUBindGroup {
    let key = `${this.id(layout)}`;
    for (const buffer of buffers) key += `,${this.id(buffer)}`;
    let group = this.groups.get(key);
    if (!group) {
      if (this.groups.size >= this.capacity) this.groups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniforms, offset: 0, size: UNIFORM_BINDING_SIZE } }];
      buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
      group = this.device.createBindGroup({ layout, entries });
      this.groups.set(key, group);
    }
    return group;
  }
}
