/**
 * Ramps the `users.user_name -> users.username` rename through every stage under an ORM
 * whose database is routed by `flagshift/sql`, on PGlite: what each stage stores, what
 * the ORM reads, and the mismatch a shadow read catches on a row corrupted behind its back.
 */
import { createMemoryFlags, createMemoryMetrics, STAGES } from 'flagshift';
import { createBackfill, expand } from 'flagshift/lifecycle';
import { openPglite } from 'flagshift/pglite';
import { type RoutedPglite, routePglite } from 'flagshift/sql';
import { usernameRename } from '../flagshift.config.js';
import { line, printQuery } from './print-rows.js';

/** What the example does through the ORM. */
export interface OrmClient {
  insert(id: number, username: string): Promise<void>;
  update(id: number, username: string): Promise<void>;
  /** The username of row `id`, as the ORM returns it. */
  read(id: number): Promise<string | null | undefined>;
}

/** Runs the ramp with the ORM client `connect` builds over the routed database. */
export async function rampRename(
  orm: string,
  connect: (db: RoutedPglite) => OrmClient | Promise<OrmClient>,
): Promise<void> {
  const { db: pglite, driver, close } = await openPglite();
  await driver.query('CREATE TABLE users (id integer PRIMARY KEY, user_name text, email text)');
  await driver.query(`INSERT INTO users VALUES (1, 'ada', 'ada@example.com'), (2, 'grace', 'grace@example.com')`);
  await expand(driver, usernameRename);

  const flags = createMemoryFlags({ [usernameRename.stageFlagKey]: 'off', [usernameRename.percentFlagKey]: 100 });
  const metrics = createMemoryMetrics();
  const routed = routePglite(pglite, { migrations: [usernameRename], flags, metrics });
  const client = await connect(routed);
  console.log(`${orm} over a routed PGlite: its schema names users.username, the table still has user_name`);

  let nextId = 3;
  for (const stage of STAGES) {
    flags.set(usernameRename.stageFlagKey, stage);
    console.log(`\n-- ${stage}`);
    if (stage === 'shadow') {
      const report = await createBackfill(driver, usernameRename).run();
      console.log(`   backfill: ${report.totalRowsDone} rows copied to username`);
      // With the sync triggers off: a write that bypassed them, the drift shadow reads exist to catch.
      await driver.transaction(async (tx) => {
        await tx.query(`SET LOCAL session_replication_role = replica`);
        await tx.query(`UPDATE users SET username = 'grace-corrupted' WHERE id = 2`);
      });
      console.log('   corrupted row 2 behind the ORM and the triggers: username = grace-corrupted');
    }
    const id = nextId++;
    await client.insert(id, `${stage}-user`);
    await client.update(1, `ada-${stage}`);
    console.log(
      `   ${orm}: insert id ${id}, update id 1 to "ada-${stage}"; reads id 1 -> ${line(await client.read(1))}`,
    );
    console.log(`   ${orm}: reads id 2 -> ${line(await client.read(2))}`);
    await printQuery(driver, 'SELECT id, user_name, username FROM users ORDER BY id', '   ');
    if (stage === 'live') await driver.query(`UPDATE users SET username = user_name WHERE id = 2`);
  }
  const caught = metrics.snapshot().migrations[usernameRename.name]?.recentMismatches ?? [];
  console.log(`\nmismatches caught: ${caught.length}`);
  for (const sample of caught.slice(0, 2)) {
    console.log(
      `   ${sample.stage} ${sample.operation}: ${sample.diffs.map((diff) => `${diff.field} ${diff.kind}`).join(', ')}`,
    );
  }
  if (caught.length === 0) throw new Error('the corrupted row was not caught');
  await routed.end();
  await close();
}
