import { randomUUID } from 'node:crypto';
import type { EntityManager, Repository } from 'typeorm';
import type { GatewayDatabase } from '../db/database.js';
import type { ModelEntry } from '../../entities/model-entry.js';
import { findDefaultModelEntry, findModelEntry, listModelEntries } from '../db/lookups.js';
import { inTransaction } from '../db/transactions.js';
import { badInput } from '../platform/errors.js';
import { modelNotFound } from './errors.js';
import { checkDescription, checkPrice, checkSystemPrompt, checkThreshold } from './limits.js';
import { canonicalModelName, normalizeAlias, requireModelName } from '../ollama/model-names.js';

/** Catalogue fields an operator sets; `undefined` leaves a field as it is, `null` clears it. */
export interface CatalogFields {
  alias?: string | null;
  description?: string | null;
  /** System prompt for requests and sessions that bring none. */
  systemPrompt?: string | null;
  enabled?: boolean | null;
  isDefault?: boolean | null;
  promptPricePer1k?: number | null;
  completionPricePer1k?: number | null;
  inactivityThresholdSeconds?: number | null;
}

export interface RegisterModelInput extends CatalogFields {
  /** Ollama name; stored in canonical form (`name:tag`, lower case). */
  name: string;
}

/** A catalogue hit and how it was found. */
export interface CatalogMatch {
  entry: ModelEntry;
  via: 'alias' | 'name';
}

/**
 * The model catalogue (ModelEntry rows): aliases, descriptions, prices, per-model inactivity
 * thresholds and the default model. Knows nothing of Ollama; lifecycle and views merge it with
 * what the host reports.
 */
export class ModelCatalog {
  constructor(private readonly db: GatewayDatabase) {}

  /** Plain SQL: the idle reaper reads it on every check. */
  list(): Promise<ModelEntry[]> {
    return listModelEntries(this.db.sqlClient);
  }

  /**
   * Finds an entry by alias first, then by Ollama name (case-insensitive, default tag `latest`).
   * Runs for every generation request: plain SQL, unless inside an admin transaction (`tx`).
   */
  async find(requested: string, tx?: EntityManager): Promise<CatalogMatch | null> {
    const lookup = (by: { alias: string } | { name: string }) =>
      tx ? entries(tx).findOne({ where: by }) : findModelEntry(this.db.sqlClient, by);
    const wanted = requested.trim().toLowerCase();
    if (wanted && !wanted.includes(':') && !wanted.includes('/')) {
      const byAlias = await lookup({ alias: wanted });
      if (byAlias) return { entry: byAlias, via: 'alias' };
    }
    const name = canonicalModelName(requested);
    const byName = name ? await lookup({ name }) : null;
    return byName ? { entry: byName, via: 'name' } : null;
  }

  /** The entry for a name or alias, or MODEL_NOT_FOUND. */
  async get(requested: string, tx?: EntityManager): Promise<ModelEntry> {
    const match = await this.find(requested, tx);
    if (!match) throw modelNotFound(requested, `Model "${requested.slice(0, 200)}" is not in the catalog.`);
    return match.entry;
  }

  async defaultEntry(): Promise<ModelEntry | null> {
    return findDefaultModelEntry(this.db.sqlClient);
  }

  /** Adds an entry; BAD_USER_INPUT when the name is already catalogued or the alias is taken. */
  async register(input: RegisterModelInput): Promise<ModelEntry> {
    const name = requireModelName(input.name);
    const fields = validateFields(input);
    return inTransaction(this.db, async (tx) => {
      if (await entries(tx).findOne({ where: { name } }))
        throw badInput(`Model "${name}" is already in the catalog; use updateModel to change it.`, { field: 'name' });
      const entry = entries(tx).create({ ...blankEntry(name), ...definedOnly(fields) });
      await this.checkConflicts(tx, entry);
      if (entry.isDefault) await clearDefault(tx);
      return entries(tx).save(entry);
    });
  }

  /** Changes an entry found by name or alias; MODEL_NOT_FOUND when there is none. */
  async update(requested: string, patch: CatalogFields): Promise<ModelEntry> {
    const fields = validateFields(patch);
    return inTransaction(this.db, async (tx) => {
      const entry = await this.get(requested, tx);
      Object.assign(entry, definedOnly(fields));
      await this.checkConflicts(tx, entry);
      if (fields.isDefault) await clearDefault(tx, entry.id);
      return entries(tx).save(entry);
    });
  }

  /** The entry for a name or alias, created (enabled, no alias) when the name is not catalogued yet. */
  async ensure(tx: EntityManager, requested: string): Promise<ModelEntry> {
    const match = await this.find(requested, tx);
    if (match) return match.entry;
    const entry = entries(tx).create(blankEntry(requireModelName(requested)));
    await this.checkConflicts(tx, entry);
    return entries(tx).save(entry);
  }

  /** Makes a model (catalogued on the fly when needed) the one default. */
  async setDefault(requested: string): Promise<ModelEntry> {
    return inTransaction(this.db, async (tx) => {
      const entry = await this.ensure(tx, requested);
      await clearDefault(tx, entry.id);
      entry.isDefault = true;
      return entries(tx).save(entry);
    });
  }

  /** Sets (or clears, with null) a model's own inactivity threshold, cataloguing it when needed. */
  async setThreshold(requested: string, seconds: number | null): Promise<ModelEntry> {
    const value = checkThreshold(seconds);
    return inTransaction(this.db, async (tx) => {
      const entry = await this.ensure(tx, requested);
      entry.inactivityThresholdSeconds = value;
      return entries(tx).save(entry);
    });
  }

  /**
   * An alias must be unique, and must not read as another catalogued model's name
   * (alias `llama3.2` while `llama3.2:latest` is a different entry), or requests would be ambiguous.
   */
  async checkConflicts(tx: EntityManager, entry: ModelEntry): Promise<void> {
    const repo = entries(tx);
    const { Not } = await import('typeorm'); // loaded: a transaction runs
    const others = entry.id ? { id: Not(entry.id) } : {};
    if (entry.alias) {
      const taken = await repo.findOne({ where: { alias: entry.alias, ...others } });
      if (taken) throw badInput(`Alias "${entry.alias}" is already used by "${taken.name}".`, { field: 'alias' });
      const shadowed = await repo.findOne({ where: { name: canonicalModelName(entry.alias) ?? '', ...others } });
      if (shadowed) throw badInput(`Alias "${entry.alias}" would hide the catalogued model "${shadowed.name}".`, { field: 'alias' });
    }
    const stem = entry.name.endsWith(':latest') ? entry.name.slice(0, -':latest'.length) : null;
    if (stem) {
      const hiding = await repo.findOne({ where: { alias: stem, ...others } });
      if (hiding) throw badInput(`"${hiding.name}" uses the alias "${stem}", which would hide "${entry.name}".`, { field: 'name' });
    }
  }
}

function validateFields(f: CatalogFields): CatalogFields {
  return {
    alias: f.alias === undefined ? undefined : normalizeAlias(f.alias),
    description: f.description === undefined ? undefined : checkDescription(f.description),
    systemPrompt: f.systemPrompt === undefined ? undefined : checkSystemPrompt(f.systemPrompt),
    enabled: f.enabled ?? undefined,
    isDefault: f.isDefault ?? undefined,
    promptPricePer1k: f.promptPricePer1k === undefined ? undefined : checkPrice(f.promptPricePer1k, 'promptPricePer1k'),
    completionPricePer1k: f.completionPricePer1k === undefined ? undefined : checkPrice(f.completionPricePer1k, 'completionPricePer1k'),
    inactivityThresholdSeconds:
      f.inactivityThresholdSeconds === undefined ? undefined : checkThreshold(f.inactivityThresholdSeconds, 'inactivityThresholdSeconds'),
  };
}

function definedOnly(f: CatalogFields): Partial<ModelEntry> {
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as Partial<ModelEntry>;
}

/** A new catalogue row with every column set (entity hooks do not run for every write path). */
export function blankEntry(name: string): Partial<ModelEntry> {
  const now = new Date();
  return {
    id: randomUUID(),
    name,
    alias: null,
    description: null,
    systemPrompt: null,
    enabled: true,
    isDefault: false,
    promptPricePer1k: null,
    completionPricePer1k: null,
    inactivityThresholdSeconds: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** The catalogue's repository in an admin transaction (by entity name: the class would load TypeORM at start). */
const entries = (tx: EntityManager): Repository<ModelEntry> => tx.getRepository<ModelEntry>('ModelEntry');

async function clearDefault(tx: EntityManager, exceptId?: string): Promise<void> {
  const { Not } = await import('typeorm'); // loaded: a transaction runs
  await entries(tx).update(exceptId ? { isDefault: true, id: Not(exceptId) } : { isDefault: true }, { isDefault: false });
}
