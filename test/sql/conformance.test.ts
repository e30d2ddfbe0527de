/**
 * The stage contract (docs/STAGES.md), one suite for every way an application reaches the
 * table: flagshift's repository, and the SQL router under raw pg-style SQL, Kysely,
 * Drizzle, Prisma 7, TypeORM and Knex, on PGlite (`routePglite`) and on the real server
 * (`routePool` over a pg pool): which columns each stage writes (in one statement), which side reads are
 * served from, a corrupted row caught in shadow and live, sticky read percentages, one
 * decision per transaction, and dual writes kept through a flag outage.
 */
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { eq } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import {
  createRepository,
  defineMigration,
  defineTable,
  isInReadPercentage,
  type MemoryFlags,
  type MemoryMetrics,
  type Migration,
  rename,
  STAGES,
  type Stage,
} from 'flagshift';
import { createPgliteDriver } from 'flagshift/pglite';
import { pgModuleOf } from 'flagshift/sql';
import knex from 'knex';
import { Kysely, PostgresDialect } from 'kysely';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { DataSource, EntitySchema } from 'typeorm';
import { expect, it, onTestFinished } from 'vitest';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { userEntity } from '../support/fixtures.js';
import { drizzleUsers, filePglite, type KyselyDatabase, type Routed, routedUsers, usernameRename } from './fixture.js';
import { generatedPrismaClient, type PrismaClientClass } from './prisma-client.js';

const migration = usernameRename();

/** {@link usernameRename} on the test schema's table, named with its schema. */
function schemaUsernameRename(schema: string): Migration {
  const users = defineTable({ name: `${schema}.users`, key: 'id', entity: userEntity });
  return defineMigration({
    name: migration.name,
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  });
}
const STAGE_FLAG = migration.stageFlagKey;
const PERCENT_FLAG = migration.percentFlagKey;

/** One way an application talks to the database: the three calls the suite makes. */
interface Client {
  insert(id: number, username: string): Promise<void>;
  update(id: number, username: string): Promise<void>;
  read(id: number): Promise<{ id: number; username: string | null } | undefined>;
  /** Reads in one transaction, twice, with a flag change between. */
  readTwiceInTransaction(id: number, between: () => void): Promise<(string | null)[]>;
}

function rawClient(db: Routed): Client {
  return {
    async insert(id, username) {
      await db.query('INSERT INTO users (id, username, email) VALUES ($1, $2, $3)', [id, username, `${username}@x`]);
    },
    async update(id, username) {
      await db.query('UPDATE users SET username = $2 WHERE id = $1', [id, username]);
    },
    async read(id) {
      const result = await db.query('SELECT id, username FROM users WHERE id = $1', [id]);
      return result.rows[0] as { id: number; username: string | null } | undefined;
    },
    async readTwiceInTransaction(id, between) {
      const client = await db.connect();
      try {
        await client.query('BEGIN');
        const sql = 'SELECT username FROM users WHERE id = $1';
        const first = ((await client.query(sql, [id])).rows[0] as { username: string | null }).username;
        between();
        const second = ((await client.query(sql, [id])).rows[0] as { username: string | null }).username;
        await client.query('COMMIT');
        return [first, second];
      } finally {
        client.release();
      }
    },
  };
}

function kyselyClient(db: Routed): Client {
  const kysely = new Kysely<KyselyDatabase>({ dialect: new PostgresDialect({ pool: db as never }) });
  return {
    async insert(id, username) {
      await kysely
        .insertInto('users')
        .values({ id, username, email: `${username}@x` })
        .execute();
    },
    async update(id, username) {
      await kysely.updateTable('users').set({ username }).where('id', '=', id).execute();
    },
    async read(id) {
      return kysely.selectFrom('users').select(['id', 'username']).where('id', '=', id).executeTakeFirst();
    },
    async readTwiceInTransaction(id, between) {
      return kysely.transaction().execute(async (tx) => {
        const read = async () =>
          (await tx.selectFrom('users').select('username').where('id', '=', id).executeTakeFirstOrThrow()).username;
        const first = await read();
        between();
        return [first, await read()];
      });
    },
  };
}

function drizzleClient(db: Routed, kind: 'pg' | 'pglite'): Client {
  const orm = kind === 'pg' ? drizzlePg({ client: db as never }) : drizzlePglite({ client: db as never });
  return {
    async insert(id, username) {
      await orm.insert(drizzleUsers).values({ id, username, email: `${username}@x` });
    },
    async update(id, username) {
      await orm.update(drizzleUsers).set({ username }).where(eq(drizzleUsers.id, id));
    },
    async read(id) {
      const rows = await orm
        .select({ id: drizzleUsers.id, username: drizzleUsers.username })
        .from(drizzleUsers)
        .where(eq(drizzleUsers.id, id));
      return rows[0];
    },
    async readTwiceInTransaction(id, between) {
      return orm.transaction(async (tx) => {
        const read = async () =>
          (await tx.select({ username: drizzleUsers.username }).from(drizzleUsers).where(eq(drizzleUsers.id, id)))[0]!
            .username;
        const first = await read();
        between();
        return [first, await read()];
      });
    },
  };
}

/**
 * Prisma 7 over the routed database: `@prisma/adapter-pg` over the routed pool, the
 * community `pglite-prisma-adapter` over the routed PGlite. Disconnected after the test.
 */
function prismaClient(db: Routed, kind: 'pg' | 'pglite', PrismaClient: PrismaClientClass, schema: string): Client {
  const adapter = kind === 'pg' ? new PrismaPg(db as never, { schema }) : new PrismaPGlite(db as never);
  const prisma = new PrismaClient({ adapter });
  onTestFinished(() => prisma.$disconnect());
  const select = { id: true, username: true };
  return {
    async insert(id, username) {
      await prisma.users.create({ data: { id, username, email: `${username}@x` } });
    },
    async update(id, username) {
      await prisma.users.update({ where: { id }, data: { username } });
    },
    async read(id) {
      return (await prisma.users.findUnique({ where: { id }, select })) ?? undefined;
    },
    async readTwiceInTransaction(id, between) {
      return prisma.$transaction(async (tx) => {
        const read = async () => (await tx.users.findUnique({ where: { id }, select }))!.username;
        const first = await read();
        between();
        return [first, await read()];
      });
    },
  };
}

/** The users table as a TypeORM application declares it: the new shape only. */
const typeormUsers = new EntitySchema<{ id: number; username: string | null; email: string | null }>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: { type: 'int', primary: true },
    username: { type: 'text', nullable: true },
    email: { type: 'text', nullable: true },
  },
});

/**
 * TypeORM over the routed database: its `driver` option is a pg module whose `Pool` is the
 * routed pool or the routed PGlite.
 */
async function typeormClient(db: Routed): Promise<Client> {
  const source = new DataSource({ type: 'postgres', driver: pgModuleOf(db), entities: [typeormUsers] });
  // Not destroyed: the pool is the test's, ended with it (routing.test.ts ends one as TypeORM does).
  await source.initialize();
  const users = source.getRepository(typeormUsers);
  const select = { id: true, username: true } as const;
  return {
    async insert(id, username) {
      await users.insert({ id, username, email: `${username}@x` });
    },
    async update(id, username) {
      await users.update({ id }, { username });
    },
    async read(id) {
      return (await users.findOne({ where: { id }, select })) ?? undefined;
    },
    async readTwiceInTransaction(id, between) {
      return source.transaction(async (manager) => {
        const read = async () => (await manager.findOne(typeormUsers, { where: { id }, select }))!.username;
        const first = await read();
        between();
        return [first, await read()];
      });
    },
  };
}

/** Knex (3.3+) over the routed database, handed to it as `connectionPool`: Knex doesn't own it. */
function knexClient(db: Routed): Client {
  const k = knex({ client: 'pg', connectionPool: db });
  type Row = { id: number; username: string | null };
  return {
    async insert(id, username) {
      await k('users').insert({ id, username, email: `${username}@x` });
    },
    async update(id, username) {
      await k('users').where({ id }).update({ username });
    },
    async read(id) {
      return (await k<Row>('users').select('id', 'username').where({ id }).first()) as Row | undefined;
    },
    async readTwiceInTransaction(id, between) {
      return k.transaction(async (trx) => {
        const read = async () => ((await trx<Row>('users').select('username').where({ id }).first()) as Row).username;
        const first = await read();
        between();
        return [first, await read()];
      });
    },
  };
}

/**
 * flagshift's own repository over the same table, flags and metrics: the reference the
 * routed flavours must agree with.
 */
function repositoryClient(
  ctx: DriverContext,
  pglite: PGlite,
  routing: { flags: MemoryFlags; metrics: MemoryMetrics },
): Client {
  // On PGlite the file's own instance: the one the routed flavours and the inspection use.
  const driver = ctx.kind === 'pg' ? ctx.driver : createPgliteDriver(pglite);
  const { flags, metrics } = routing;
  const repo = createRepository(migration, { driver, flags, metrics, flagCache: { ttlMs: 0 } });
  return {
    async insert(id, username) {
      await repo.insert({ id, username, email: `${username}@x` });
    },
    async update(id, username) {
      await repo.update(id, { username });
    },
    async read(id) {
      const row = await repo.get(id);
      return row === undefined ? undefined : { id: row.id, username: row.username };
    },
    async readTwiceInTransaction(id, between) {
      return repo.transaction(async (tx) => {
        const first = (await tx.get(id))!.username;
        between();
        return [first, (await tx.get(id))!.username];
      });
    },
  };
}

const FLAVORS = ['repository', 'raw', 'kysely', 'drizzle', 'prisma', 'typeorm', 'knex'] as const;

const pglite = filePglite();
const prismaClass = generatedPrismaClient();

describeDrivers('the stage contract, through the repository and the routed SQL of each ORM', (getCtx) => {
  async function setup(flavor: (typeof FLAVORS)[number], stage: Stage, options: { percent?: number } = {}) {
    const ctx = getCtx();
    // Prisma qualifies every table with its schema: on the server the migration names it too.
    const qualified = flavor === 'prisma' && ctx.kind === 'pg';
    const migration = qualified ? schemaUsernameRename(ctx.schema) : undefined;
    const routed = await routedUsers(ctx, pglite(), { stage, ...options, ...(migration ? { migration } : {}) });
    const { db } = routed;
    const client =
      flavor === 'repository'
        ? repositoryClient(ctx, pglite(), routed)
        : flavor === 'raw'
          ? rawClient(db)
          : flavor === 'kysely'
            ? kyselyClient(db)
            : flavor === 'drizzle'
              ? drizzleClient(db, ctx.kind)
              : flavor === 'typeorm'
                ? await typeormClient(db)
                : flavor === 'knex'
                  ? knexClient(db)
                  : prismaClient(db, ctx.kind, prismaClass(), ctx.schema);
    return { ...routed, client };
  }

  for (const flavor of FLAVORS) {
    it(`${flavor}: each stage writes its sides in one statement and serves its side`, async () => {
      const { flags, client, physical, corrupt, mismatches } = await setup(flavor, 'off');
      for (const [index, stage] of STAGES.entries()) {
        flags.set(STAGE_FLAG, stage);
        const id = index + 1;
        await client.insert(id, `name-${id}`);
        const writesOld = stage !== 'complete';
        const writesNew = stage !== 'off';
        expect(await physical(id), `insert in ${stage}`).toEqual({
          user_name: writesOld ? `name-${id}` : null,
          username: writesNew ? `name-${id}` : null,
        });
        await client.update(id, `renamed-${id}`);
        expect(await physical(id), `update in ${stage}`).toEqual({
          user_name: writesOld ? `renamed-${id}` : null,
          username: writesNew ? `renamed-${id}` : null,
        });
        // Corrupt the new side only: the served side shows which one a read came from.
        const before = mismatches();
        if (writesOld && writesNew) {
          await corrupt(id, 'corrupt');
          const servesNew = stage === 'live' || stage === 'rampdown';
          expect((await client.read(id))?.username, `read in ${stage}`).toBe(servesNew ? 'corrupt' : `renamed-${id}`);
          const compares = stage === 'shadow' || stage === 'live';
          expect(mismatches() - before, `mismatches in ${stage}`).toBe(compares ? 1 : 0);
        } else {
          expect((await client.read(id))?.username).toBe(`renamed-${id}`);
        }
      }
    });

    it(`${flavor}: live serves new to the entities inside the read percentage, sticky as it rises`, async () => {
      const { flags, client, corrupt } = await setup(flavor, 'dualwrite', { percent: 0 });
      const ids = Array.from({ length: 12 }, (_, i) => i + 1);
      for (const id of ids) await client.insert(id, `name-${id}`);
      for (const id of ids) await corrupt(id, `new-${id}`);
      flags.set(STAGE_FLAG, 'live');
      let servedNew = new Set<number>();
      for (const percent of [0, 50, 100]) {
        flags.set(PERCENT_FLAG, percent);
        const now = new Set<number>();
        for (const id of ids) {
          const username = (await client.read(id))?.username;
          const inside = isInReadPercentage(percent, STAGE_FLAG, String(id));
          expect(username, `id ${id} at ${percent}%`).toBe(inside ? `new-${id}` : `name-${id}`);
          if (inside) now.add(id);
        }
        for (const id of servedNew) expect(now.has(id), `id ${id} stays new at ${percent}%`).toBe(true);
        servedNew = now;
      }
      expect(servedNew.size).toBe(ids.length);
    });

    it(`${flavor}: a transaction keeps one decision for its whole length`, async () => {
      const { flags, client, corrupt } = await setup(flavor, 'dualwrite');
      await client.insert(1, 'ada');
      await corrupt(1, 'new-ada');
      const seen = await client.readTwiceInTransaction(1, () => flags.set(STAGE_FLAG, 'rampdown'));
      expect(seen).toEqual(['ada', 'ada']);
      expect((await client.read(1))?.username).toBe('new-ada');
    });

    it(`${flavor}: a flag outage keeps dual writes`, async () => {
      const { flags, client, physical } = await setup(flavor, 'shadow');
      await client.insert(1, 'before');
      flags.fail(STAGE_FLAG, 'error');
      await client.insert(2, 'during');
      expect(await physical(2)).toEqual({ user_name: 'during', username: 'during' });
      await client.update(1, 'updated');
      expect(await physical(1)).toEqual({ user_name: 'updated', username: 'updated' });
    });
  }
});
