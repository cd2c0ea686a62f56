import type { GatewayDatabase } from '../db/database.js';
import { readSetting, writeSetting } from '../db/lookups.js';
import { badInput } from './errors.js';
import { checkThreshold } from '../models/limits.js';

/** Keys of the Setting rows this service owns. */
export const SettingKey = {
  defaultSystemPrompt: 'default_system_prompt',
  inactivityThresholdSeconds: 'inactivity_threshold_seconds',
} as const;

export const MAX_SYSTEM_PROMPT_CHARS = 32_000;

/**
 * Runtime settings kept in the `settings` table (key → JSON value). A row holding null means
 * "explicitly cleared"; no row means "use the configured default".
 */
export class SettingsService {
  constructor(
    private readonly db: GatewayDatabase,
    private readonly defaults: { inactivityThresholdSeconds?: number },
  ) {}

  /** Raw read: `found` is false when no row exists. */
  async read(key: string): Promise<{ found: boolean; value: unknown }> {
    // Read for every generation request (the inactivity threshold): plain SQL.
    return readSetting(this.db.sqlClient, key);
  }

  /** Upsert of one row (JSON value; null allowed). Plain SQL: the idle reaper stores its activity times here. */
  write(key: string, value: unknown): Promise<void> {
    return this.db.sqlClient.transaction((tx) => writeSetting(tx, key, value, new Date()));
  }

  /** System prompt that new sessions start with (sessions created earlier keep their own). */
  async getDefaultSystemPrompt(): Promise<string | null> {
    const { value } = await this.read(SettingKey.defaultSystemPrompt);
    return typeof value === 'string' && value !== '' ? value : null;
  }

  /** Sets the default system prompt; null or blank removes it. */
  async setDefaultSystemPrompt(prompt: string | null): Promise<string | null> {
    const value = prompt === null || prompt.trim() === '' ? null : prompt;
    if (value !== null && value.length > MAX_SYSTEM_PROMPT_CHARS)
      throw badInput(`The system prompt must be at most ${MAX_SYSTEM_PROMPT_CHARS} characters.`, { field: 'prompt' });
    await this.write(SettingKey.defaultSystemPrompt, value);
    return value;
  }

  /**
   * Global idle time (seconds) after which a model is unloaded, unless the model has its own.
   * Falls back to INACTIVITY_THRESHOLD_SECONDS until set through the API; null = no threshold.
   */
  async getInactivityThresholdSeconds(): Promise<number | null> {
    const { found, value } = await this.read(SettingKey.inactivityThresholdSeconds);
    if (found) return typeof value === 'number' ? value : null;
    const configured = this.defaults.inactivityThresholdSeconds;
    // 0 in the environment means "no threshold": keep_alive 0 would unload models after every request.
    return configured ? configured : null;
  }

  async setInactivityThresholdSeconds(seconds: number | null): Promise<number | null> {
    const value = checkThreshold(seconds);
    await this.write(SettingKey.inactivityThresholdSeconds, value);
    return value;
  }
}
