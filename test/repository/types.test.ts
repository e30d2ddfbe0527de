/**
 * The repository's types, as a user's editor sees them: the entity type inferred from the
 * table's zod schema, the key type from its key fields, and the shapes of queries, patches
 * and keys. `npm run typecheck` checks these assertions; at run time they do nothing.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  createRepository,
  defineMigration,
  defineTable,
  type EntityOf,
  type EqualityOperators,
  type FieldOperators,
  type FindQuery,
  type Insertable,
  type KeyInput,
  type Page,
  type PageQuery,
  type RangeOperators,
  type Repository,
  rename,
  type TextOperators,
  type Where,
} from '../../src/index.js';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string(), bio: z.string().nullable() }),
});
type User = { id: number; username: string; bio: string | null };

const memberships = defineTable({
  name: 'memberships',
  key: ['orgId', 'userId'],
  entity: z.object({ orgId: z.string(), userId: z.number().int(), role: z.enum(['owner', 'member']) }),
});

const usernameRename = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'dualwrite',
});

// Never called: the repositories below exist only for their types.
declare const options: Parameters<typeof createRepository>[1];

describe('repository types', () => {
  it('the entity type is inferred from the table schema', () => {
    expectTypeOf<EntityOf<typeof users>>().toEqualTypeOf<User>();
  });

  it('a repository over a table, a migration or a list of migrations has the same types', () => {
    const fromTable = () => createRepository(users, options);
    const fromMigration = () => createRepository(usernameRename, options);
    const fromList = () => createRepository([usernameRename], options);
    expectTypeOf(fromTable).returns.toEqualTypeOf<Repository<User, 'id'>>();
    expectTypeOf(fromMigration).returns.toEqualTypeOf<Repository<User, 'id'>>();
    expectTypeOf(fromList).returns.toEqualTypeOf<Repository<User, 'id'>>();
  });

  it('get takes the key value or an object of the key fields, and resolves to the entity or undefined', () => {
    type Users = Repository<User, 'id'>;
    expectTypeOf<Parameters<Users['get']>[0]>().toEqualTypeOf<KeyInput<User, 'id'>>();
    expectTypeOf<KeyInput<User, 'id'>>().toEqualTypeOf<Pick<User, 'id'> | number>();
    expectTypeOf<ReturnType<Users['get']>>().toEqualTypeOf<Promise<User | undefined>>();
    expectTypeOf<Users['get']>().parameter(0).not.toEqualTypeOf<string>();
  });

  it('a composite key is an object of all its fields, never one value', () => {
    const repo = () => createRepository(memberships, options);
    type Members = ReturnType<typeof repo>;
    type Membership = EntityOf<typeof memberships>;
    expectTypeOf<Parameters<Members['get']>[0]>().toEqualTypeOf<Pick<Membership, 'orgId' | 'userId'>>();
    expectTypeOf<Parameters<Members['delete']>[0]>().toEqualTypeOf<{ orgId: string; userId: number }>();
    expectTypeOf<'acme'>().not.toMatchTypeOf<Parameters<Members['get']>[0]>();
    expectTypeOf<{ orgId: 'acme' }>().not.toMatchTypeOf<Parameters<Members['get']>[0]>();
  });

  it('insert and upsert take a whole entity, its key optional; update takes a patch without the key fields', () => {
    type Users = Repository<User, 'id'>;
    expectTypeOf<Parameters<Users['insert']>[0]>().toEqualTypeOf<Insertable<User, 'id'>>();
    expectTypeOf<Parameters<Users['upsert']>[0]>().toEqualTypeOf<Insertable<User, 'id'>>();
    expectTypeOf({ username: 'ada', bio: null }).toMatchTypeOf<Parameters<Users['insert']>[0]>();
    expectTypeOf({ id: 1, username: 'ada', bio: null }).toMatchTypeOf<Parameters<Users['insert']>[0]>();
    expectTypeOf<{ id: 1; bio: null }>().not.toMatchTypeOf<Parameters<Users['insert']>[0]>();
    expectTypeOf<ReturnType<Users['insert']>>().toEqualTypeOf<Promise<User>>();
    expectTypeOf<Parameters<Users['update']>[1]>().toEqualTypeOf<Partial<Omit<User, 'id'>>>();
    expectTypeOf<ReturnType<Users['update']>>().toEqualTypeOf<Promise<boolean>>();
    expectTypeOf<ReturnType<Users['delete']>>().toEqualTypeOf<Promise<boolean>>();
  });

  it('find filters and orders by the entity fields only', () => {
    type Where = NonNullable<FindQuery<User>['where']>;
    expectTypeOf<Where['username']>().toEqualTypeOf<string | null | TextOperators<string> | undefined>();
    expectTypeOf<Where>().not.toHaveProperty('user_name');
    const query = { where: { username: 'ada' }, orderBy: { field: 'id', direction: 'desc' }, limit: 10 } as const;
    expectTypeOf(query).toMatchTypeOf<FindQuery<User>>();
    expectTypeOf<{ orderBy: 'user_name' }>().not.toMatchTypeOf<FindQuery<User>>();
    expectTypeOf<ReturnType<Repository<User, 'id'>['find']>>().toEqualTypeOf<Promise<User[]>>();
  });

  it('find operators are typed by each field: ranges on ordered fields, startsWith on text, none on JSON', () => {
    type Event = {
      id: number;
      name: string;
      at: Date;
      size: bigint | null;
      done: boolean;
      meta: { tags: string[] };
      role: 'owner' | 'member';
    };
    type W = Where<Event>;
    expectTypeOf({ id: { in: [1, 2], gte: 3, lt: 9, not: 4 } }).toMatchTypeOf<W>();
    expectTypeOf({ name: { startsWith: 'a', notIn: ['b'] }, at: { gt: new Date() } }).toMatchTypeOf<W>();
    expectTypeOf({ size: { null: false, lte: 10n }, done: { not: true } }).toMatchTypeOf<W>();
    expectTypeOf({ size: null, role: { in: ['owner'] as const } }).toMatchTypeOf<W>();
    expectTypeOf({ meta: { tags: ['x'] } }).toMatchTypeOf<W>();
    // Wrong operand types, and operators a field's type has no meaning for.
    expectTypeOf<{ id: { gt: string } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ id: { in: string[] } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ id: { startsWith: string } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ done: { gt: true } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ role: { in: 'admin'[] } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ meta: { in: [] } }>().not.toMatchTypeOf<W>();
    expectTypeOf<{ size: { in: null[] } }>().not.toMatchTypeOf<W>();
    expectTypeOf<FieldOperators<Date>>().toEqualTypeOf<RangeOperators<Date>>();
    expectTypeOf<FieldOperators<boolean>>().toEqualTypeOf<EqualityOperators<boolean>>();
  });

  it('select narrows the result to the selected fields; findPage pages them; count takes a filter', () => {
    type Users = Repository<User, 'id'>;
    const users = {} as Users;
    const picked = () => users.find({ where: { bio: { null: false } }, select: ['id', 'username'] });
    expectTypeOf(picked).returns.toEqualTypeOf<Promise<Pick<User, 'id' | 'username'>[]>>();
    const whole = () => users.find({ orderBy: 'id' });
    expectTypeOf(whole).returns.toEqualTypeOf<Promise<User[]>>();
    const page = () => users.findPage({ limit: 10, select: ['bio'] });
    expectTypeOf(page).returns.toEqualTypeOf<Promise<Page<Pick<User, 'bio'>>>>();
    const wholePage = () => users.findPage({ limit: 10, after: 'cursor' });
    expectTypeOf(wholePage).returns.toEqualTypeOf<Promise<Page<User>>>();
    expectTypeOf<Page<User>['next']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<{ select: ['user_name'] }>().not.toMatchTypeOf<FindQuery<User>>();
    expectTypeOf<{ orderBy: 'id' }>().not.toMatchTypeOf<PageQuery<User>>();
    expectTypeOf<Parameters<Users['count']>[0]>().toEqualTypeOf<Where<User> | undefined>();
    expectTypeOf<ReturnType<Users['count']>>().toEqualTypeOf<Promise<number>>();
  });

  it('a transaction hands the callback a repository of the same types', () => {
    type Users = Repository<User, 'id'>;
    type Body = Parameters<Users['transaction']>[0];
    expectTypeOf<Parameters<Body>[0]>().toEqualTypeOf<Users>();
  });
});
