// Bind group layouts read from a kernel's WGSL, and a cache of bind groups that also hands out the slots
// of the shared uniform buffer. Each bind group binds one fixed slot, so a dispatch over buffers seen
// before usually reuses a bind group whose slot is still free in the current batch and creates nothing.
//
// The slot is fixed in the bind group instead of chosen by a dynamic offset because lavapipe copies the
// whole descriptor set into a newly created one on every bind with dynamic offsets (apply_dynamic_offsets
// in Mesa's lvp_execute.c). With Mesa 25.0.7 on 2 cores, that cost lavapipe's queue thread about 8 µs more
// per dispatch of a 64-element add than a fixed slot (per-thread CPU time over 5000 dispatches).

/** The byte size of the uniform binding in every bind group, and of each dispatch's uniform slot. */
export const UNIFORM_BINDING_SIZE = 256;

const BINDING = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(uniform|storage\s*,\s*read_write|storage\s*,\s*read|storage)\s*>/g;

/**
 * Builds the bind group layout that a kernel declares: binding 0 is its uniform block, and every other
 * binding a storage buffer, read-only unless the WGSL declares it read_write.
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
    entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
  }
  return device.createBindGroupLayout({ entries, label });
}

/** A cached bind group and the uniform slot it binds. */
export interface SlotBinding {
  group: GPUBindGroup;
  slot: number;
}

/**
 * Bind groups by layout and buffers, each tied to one slot of the uniform buffer, and the slots taken in
 * the current batch. A dispatch gets a bind group of its layout and buffers whose slot no earlier
 * dispatch of the batch took, creating one for a free slot when none is left. Pool buffers live as long
 * as the backend, so an entry never goes stale. The cache is cleared when it contains more than `capacity`
 * bind groups, which keeps it bounded.
 */
export class BindGroupCache {
  private readonly groups = new Map<string, { bindings: SlotBinding[]; next: number }>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private size = 0;
  /** The batch in which each slot was last taken. Batch numbers start at 1, so 0 means never. */
  private readonly takenIn: Uint32Array;
  private batch = 1;
  /** The first slot that the search for a free slot tries, so that a batch hands out its slots in one pass. */
  private cursor = 0;
  /** One past the highest slot taken in the current batch. */
  slotsInUse = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly uniforms: GPUBuffer,
    readonly slotCount: number,
    private readonly capacity = 8192,
  ) {
    this.takenIn = new Uint32Array(slotCount);
  }

  private id(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(object, id);
    }
    return id;
  }

  /**
   * Returns a bind group of `layout` with a slot of the uniform buffer (UNIFORM_BINDING_SIZE bytes at
   * slot * UNIFORM_BINDING_SIZE) at binding 0 and `buffers` at bindings 1, 2, ..., and marks that slot
   * taken until endBatch(). Throws when every slot is taken, so the caller must end the batch first.
   */
  acquire(layout: GPUBindGroupLayout, buffers: readonly GPUBuffer[]): SlotBinding {
    let key = `${this.id(layout)}`;
    for (const buffer of buffers) key += `,${this.id(buffer)}`;
    let entry = this.groups.get(key);
    if (entry) {
      // Start after the binding used last, so that a run of dispatches over the same buffers walks the
      // list once instead of rescanning the bindings that it already took.
      const { bindings } = entry;
      for (let k = 0; k < bindings.length; k++) {
        const index = (entry.next + k) % bindings.length;
        const binding = bindings[index];
        if (this.takenIn[binding.slot] !== this.batch) {
          entry.next = index + 1;
          return this.take(binding);
        }
      }
    }
    if (this.size >= this.capacity) {
      this.groups.clear();
      this.size = 0;
      entry = undefined;
    }
    if (!entry) {
      entry = { bindings: [], next: 0 };
      this.groups.set(key, entry);
    }
    const binding = this.create(layout, this.freeSlot(), buffers);
    entry.bindings.push(binding);
    entry.next = entry.bindings.length;
    this.size++;
    return this.take(binding);
  }

  private create(layout: GPUBindGroupLayout, slot: number, buffers: readonly GPUBuffer[]): SlotBinding {
    const uniformSlot = { buffer: this.uniforms, offset: slot * UNIFORM_BINDING_SIZE, size: UNIFORM_BINDING_SIZE };
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: uniformSlot }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    return { group: this.device.createBindGroup({ layout, entries }), slot };
  }

  /** Frees every slot, once the dispatches of the batch are submitted with the uniforms written. */
  endBatch(): void {
    this.batch++;
    this.cursor = 0;
    this.slotsInUse = 0;
  }

  private take(binding: SlotBinding): SlotBinding {
    this.takenIn[binding.slot] = this.batch;
    this.slotsInUse = Math.max(this.slotsInUse, binding.slot + 1);
    return binding;
  }

  private freeSlot(): number {
    for (let k = 0; k < this.slotCount; k++) {
      const slot = (this.cursor + k) % this.slotCount;
      if (this.takenIn[slot] !== this.batch) {
        this.cursor = slot + 1;
        return slot;
      }
    }
    throw new Error(`BindGroupCache: all ${this.slotCount} uniform slots are taken; end the batch before the next dispatch`);
  }
}
