/**
 * What a stage resolver remembers of the flags' last good values: per flag key (and
 * segment), and for per-entity migrations per entity, so an outage falls back to what this
 * process last saw rather than to a default that could stop dual writes.
 */
import { LRUCache } from 'lru-cache';
import { STAGES, type Stage } from '../model/index.js';

// A flag value that an evaluation got, and when that evaluation began.
export interface Known<T> {
  readonly value: T;
  readonly sequence: number;
}

// Records `value` unless a newer evaluation's result is already recorded for `flagKey`.
export function remember<T>(known: Map<string, Known<T>>, flagKey: string, value: T, sequence: number): void {
  const current = known.get(flagKey);
  if (current === undefined || current.sequence < sequence) known.set(flagKey, { value, sequence });
}

// What the flags last said for one entity of a per-entity migration.
export interface EntityGood {
  stage: Stage | undefined;
  stageSequence: number;
  percent: number | undefined;
  percentSequence: number;
}

const DUALWRITE = STAGES.indexOf('dualwrite');
const COMPLETE = STAGES.indexOf('complete');

// The remembered entities of one per-entity stage flag, and how many of them are in each
// stage, so an entity without a remembered stage can be given one without a scan.
export class EntityMemory {
  readonly entities: LRUCache<string, EntityGood>;
  private readonly counts: number[] = STAGES.map(() => 0);

  constructor(max: number) {
    this.entities = new LRUCache<string, EntityGood>({
      max,
      dispose: (good) => this.count(good.stage, -1),
    });
  }

  count(stage: Stage | undefined, delta: number): void {
    if (stage !== undefined) this.counts[STAGES.indexOf(stage)]! += delta;
  }

  /**
   * The stage for an entity with none remembered, once the migration has begun (some
   * remembered entity is at `dualwrite` or beyond): `dualwrite`, which writes both sides
   * and reads the old one, authoritative until `live` and kept whole by dual writes after
   * it; what the provider would have chosen for this entity is unknown, so neither its
   * reads nor the ramp move on. `complete` only when every remembered entity is complete.
   * Undefined before the migration has begun.
   */
  unseen(): Stage | undefined {
    let highest = -1;
    let total = 0;
    for (let index = 0; index < STAGES.length; index++) {
      const count = this.counts[index]!;
      total += count;
      if (count > 0) highest = index;
    }
    if (highest < DUALWRITE) return undefined;
    if (this.counts[COMPLETE] === total) return 'complete';
    return 'dualwrite';
  }
}
