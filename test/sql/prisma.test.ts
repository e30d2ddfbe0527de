/**
 * Prisma 7 through `@prisma/adapter-pg` over a routed pool, on the real server (the
 * adapter takes a pg pool; PGlite has none). The client is generated from
 * test/sql/prisma/schema.prisma before the suite: the schema names the new shape only.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import { defineMigration, defineTable, rename, STAGES } from 'flagshift';
import { beforeAll, expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import { userEntity } from '../support/fixtures.js';
import { routedUsers } from './fixture.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The part of the generated client the suite uses. */
interface UsersDelegate {
  create(args: { data: { id: number; username: string; email: string } }): Promise<unknown>;
  update(args: { where: { id: number }; data: { username: string } }): Promise<unknown>;
  findUnique(args: { where: { id: number } }): Promise<{ id: number; username: string | null } | null>;
}
interface GeneratedClient {
  users: UsersDelegate;
  $transaction<T>(fn: (tx: { users: UsersDelegate }) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}
type ClientClass = new (options: { adapter: unknown }) => GeneratedClient;

let PrismaClient: ClientClass;
beforeAll(async () => {
  // The client generator needs no engine binary: the schema engine is only for migrations.
  await promisify(execFile)(
    process.execPath,
    ['node_modules/prisma/build/index.js', 'generate', '--schema', 'test/sql/prisma/schema.prisma'],
    {
      cwd: root,
      timeout: 120_000,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true', PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1' },
    },
  );
  // A path the compiler doesn't resolve: the client exists only once generated.
  const generated = './prisma/generated/client.js';
  ({ PrismaClient } = (await import(generated)) as { PrismaClient: ClientClass });
}, 120_000);

describeDrivers(
  'routed SQL: Prisma 7',
  (getCtx) => {
    async function setup() {
      const ctx = getCtx();
      // Prisma qualifies every table with its schema: the migration names it too.
      const users = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity: userEntity });
      const migration = defineMigration({
        name: 'users-username',
        table: users,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
        defaultStage: 'dualwrite',
      });
      const routed = await routedUsers(ctx, undefined, { stage: 'off', migration });
      const prisma = new PrismaClient({ adapter: new PrismaPg(routed.db as never, { schema: ctx.schema }) });
      return { ...routed, prisma };
    }

    it('each stage writes its sides in one statement, serves its side, and shadow and live catch a corrupted row', async () => {
      const { prisma, setStage, physical, corrupt, mismatches } = await setup();
      try {
        for (const [index, stage] of STAGES.entries()) {
          setStage(stage);
          const id = index + 1;
          await prisma.users.create({ data: { id, username: `name-${id}`, email: 'e' } });
          await prisma.users.update({ where: { id }, data: { username: `renamed-${id}` } });
          const writesOld = stage !== 'complete';
          const writesNew = stage !== 'off';
          expect(await physical(id), stage).toEqual({
            user_name: writesOld ? `renamed-${id}` : null,
            username: writesNew ? `renamed-${id}` : null,
          });
          if (!writesOld || !writesNew) continue;
          const before = mismatches();
          await corrupt(id, 'corrupt');
          const servesNew = stage === 'live' || stage === 'rampdown';
          expect((await prisma.users.findUnique({ where: { id } }))?.username, stage).toBe(
            servesNew ? 'corrupt' : `renamed-${id}`,
          );
          expect(mismatches() - before, stage).toBe(stage === 'shadow' || stage === 'live' ? 1 : 0);
        }
      } finally {
        await prisma.$disconnect();
      }
    });

    it('keeps one decision for a whole interactive transaction', async () => {
      const { prisma, setStage, corrupt } = await setup();
      try {
        setStage('dualwrite');
        await prisma.users.create({ data: { id: 1, username: 'ada', email: 'e' } });
        await corrupt(1, 'new-ada');
        const seen = await prisma.$transaction(async (tx) => {
          const first = (await tx.users.findUnique({ where: { id: 1 } }))?.username;
          setStage('rampdown');
          const second = (await tx.users.findUnique({ where: { id: 1 } }))?.username;
          return [first, second];
        });
        expect(seen).toEqual(['ada', 'ada']);
        expect((await prisma.users.findUnique({ where: { id: 1 } }))?.username).toBe('new-ada');
      } finally {
        await prisma.$disconnect();
      }
    });
  },
  { kinds: ['pg'] },
);
