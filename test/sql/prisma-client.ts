/**
 * The Prisma 7 client of the SQL router's suites, generated from test/sql/prisma/schema.prisma
 * once per file (the schema names the new shape only), and the part of it the suites use.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll } from 'vitest';

/** The part of the generated `users` delegate the suites use. */
export interface PrismaUsers {
  create(args: { data: { id: number; username: string; email: string } }): Promise<unknown>;
  update(args: { where: { id: number }; data: { username: string } }): Promise<unknown>;
  findUnique(args: {
    where: { id: number };
    select?: { id?: boolean; username?: boolean };
  }): Promise<{ id: number; username: string | null } | null>;
}

/** The part of the generated client the suites use. */
export interface PrismaClientLike {
  users: PrismaUsers;
  $transaction<T>(fn: (tx: { users: PrismaUsers }) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}

/** The generated client's constructor: takes a driver adapter (`@prisma/adapter-pg`, `pglite-prisma-adapter`). */
export type PrismaClientClass = new (options: { adapter: unknown }) => PrismaClientLike;

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Generates the client before the file's tests and returns a getter of its class. The
 * generator needs no engine binary: the schema engine is only for migrations.
 */
export function generatedPrismaClient(): () => PrismaClientClass {
  let PrismaClient: PrismaClientClass | undefined;
  beforeAll(async () => {
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
    ({ PrismaClient } = (await import(generated)) as { PrismaClient: PrismaClientClass });
  }, 120_000);
  return () => PrismaClient!;
}
