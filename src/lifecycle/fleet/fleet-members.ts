/**
 * The fleet's options, checked once, and its members resolved: each with the migration as
 * it runs there (bound to the member's schema), its state schema and its flag context.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import type { FlagContext, FlagSource } from '../../flags/index.js';
import { ConfigurationError, type Driver, parseOptions } from '../../kernel/index.js';
import { identifierProblem, type Migration } from '../../model/index.js';
import { DEFAULT_STATE_SCHEMA, FLEET_STEPS, type FleetStep } from '../state/index.js';
import { migrationInSchema } from './in-schema.js';
import type { FleetMember, FleetOptions, FleetStatusOptions } from './types.js';

/** A member, ready to run: everything the steps need, with the defaults applied. */
export interface ResolvedMember {
  readonly name: string;
  readonly driver: Driver;
  readonly migration: Migration;
  readonly stateSchema: string;
  readonly context: FlagContext;
}

/** A fleet's members in order, the canary first among them by name, and the rest of its settings. */
export interface ResolvedFleet {
  readonly members: readonly ResolvedMember[];
  readonly canary: ResolvedMember;
  readonly concurrency: number;
  readonly through: FleetStep;
  readonly flags: FlagSource | undefined;
  readonly coordinator: string;
}

const DEFAULT_CONCURRENCY = 4;

const identifier = z
  .string()
  .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)');
const memberSchema = z.strictObject({
  name: z.string().min(1).max(200),
  driver: z.custom<Driver>((value) => typeof (value as Partial<Driver> | null)?.query === 'function'),
  schema: identifier.optional(),
  stateSchema: identifier.optional(),
  context: z.record(z.string(), z.unknown()).optional(),
});
const stepOptions = z.record(z.string(), z.unknown()).optional();
const optionsSchema = z.strictObject({
  members: z.array(memberSchema).min(1),
  canary: z.string().optional(),
  concurrency: z.number().int().min(1).max(256).optional(),
  through: z.enum(FLEET_STEPS).optional(),
  flags: z
    .custom<FlagSource>((value) => typeof (value as Partial<FlagSource> | null)?.resolve === 'function')
    .optional(),
  expand: stepOptions,
  backfill: stepOptions,
  verify: stepOptions,
  contract: stepOptions,
  coordinator: z.string().min(1).max(100).optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal).optional(),
  onProgress: z.function().optional(),
});

const EXPECTED = {
  members: 'a non-empty list of members ({ name, driver, schema?, stateSchema?, context? })',
  name: 'a string of 1-200 characters',
  driver: 'a driver (from flagshift/pg or flagshift/pglite)',
  schema: 'a plain identifier (letters, digits, _)',
  stateSchema: 'a plain identifier (letters, digits, _)',
  context: 'an evaluation context (an object)',
  canary: 'the name of a member',
  concurrency: 'an integer from 1 to 256',
  through: `one of ${FLEET_STEPS.join(', ')}`,
  flags: 'a flag source (an object with a resolve function)',
  expand: 'expand options',
  backfill: 'backfill options',
  verify: 'verification options',
  contract: 'contract options',
  coordinator: 'a string of 1-100 characters',
  signal: 'an AbortSignal',
  onProgress: 'a function',
};

/**
 * Checks `options` and resolves the members of a fleet running `migration`.
 *
 * @throws ConfigurationError for an invalid option, a duplicate member name, two members
 * that would share state, an unknown canary, or `through: 'contract'` without `flags`.
 */
export function resolveFleet(migration: Migration, options: FleetOptions | FleetStatusOptions): ResolvedFleet {
  const subject = `fleet of migration "${migration.name}"`;
  const parsed = parseOptions(subject, optionsSchema, options, EXPECTED);
  const members = options.members.map((member) => resolveMember(migration, member));
  const names = new Set<string>();
  const targets = new Map<Driver, Map<string, string>>();
  for (const member of members) {
    if (names.has(member.name)) {
      throw new ConfigurationError(`${subject}: member name "${member.name}" is given twice`, { path: 'members' });
    }
    names.add(member.name);
    // Two members over one driver with one state schema would share a backfill checkpoint.
    const states = targets.get(member.driver) ?? new Map<string, string>();
    const other = states.get(member.stateSchema);
    if (other !== undefined) {
      throw new ConfigurationError(
        `${subject}: members "${other}" and "${member.name}" share the driver and the state schema "${member.stateSchema}"; give each its own stateSchema`,
        { path: 'members' },
      );
    }
    states.set(member.stateSchema, member.name);
    targets.set(member.driver, states);
  }
  const canary = members.find((member) => member.name === (parsed.canary ?? members[0]!.name));
  if (canary === undefined) {
    throw new ConfigurationError(`${subject} option "canary" names no member: ${JSON.stringify(parsed.canary)}`, {
      path: 'canary',
    });
  }
  const through = parsed.through ?? 'verify';
  if (through === 'contract' && parsed.flags === undefined) {
    throw new ConfigurationError(
      `${subject}: through "contract" needs option "flags": contract waits for each member's stage to be complete`,
      { path: 'flags' },
    );
  }
  return {
    members,
    canary,
    concurrency: parsed.concurrency ?? DEFAULT_CONCURRENCY,
    through,
    flags: parsed.flags,
    coordinator: parsed.coordinator ?? `${hostname()}:${process.pid}`,
  };
}

function resolveMember(migration: Migration, member: FleetMember): ResolvedMember {
  const schema = member.schema;
  const stateSchema = member.stateSchema ?? (schema === undefined ? DEFAULT_STATE_SCHEMA : `flagshift_${schema}`);
  const problem = identifierProblem(stateSchema);
  if (problem !== undefined) {
    throw new ConfigurationError(
      `fleet member "${member.name}": state schema ${JSON.stringify(stateSchema)} ${problem}; give the member a stateSchema`,
      { path: 'stateSchema' },
    );
  }
  return {
    name: member.name,
    driver: member.driver,
    migration: schema === undefined ? migration : migrationInSchema(migration, schema),
    stateSchema,
    context: member.context ?? (schema === undefined ? { shard: member.name } : { tenant: member.name }),
  };
}
