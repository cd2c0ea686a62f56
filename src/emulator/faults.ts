// Fault injection rules: the first rule matching a request's path and model applies; `times`
// counts down per matched request and drops the rule at zero.

import { nameKey } from './models.js';
import type { Fault, FaultRule } from './types.js';

/** Default error texts, the same strings real Ollama sends for these statuses. */
export const BUSY_MESSAGE = 'server busy, please try again.  maximum pending requests exceeded';
export const RUNNER_ERROR = 'an error was encountered while running the model';

export function defaultStatusMessage(status: number, modelAsSent: string | undefined): string {
  switch (status) {
    case 503:
      return BUSY_MESSAGE;
    case 404:
      return `model '${modelAsSent ?? ''}' not found`;
    case 499:
      return 'request canceled';
    case 500:
      return 'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details';
    case 400:
      return 'invalid request';
    default:
      return `emulated error ${status}`;
  }
}

/** Returns an error text when the rule is malformed (used by the HTTP control surface). */
export function validateRule(rule: unknown): string | undefined {
  if (!rule || typeof rule !== 'object') return 'body must be a FaultRule object';
  const r = rule as Partial<FaultRule>;
  const f = r.fault as Partial<Fault> | undefined;
  if (!f || typeof f !== 'object') return 'fault is required';
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  switch (f.kind) {
    case 'refuse':
      break;
    case 'status':
      if (!(typeof f.status === 'number' && Number.isInteger(f.status) && f.status >= 200 && f.status <= 599)) {
        return 'fault.status must be an HTTP status (200-599)';
      }
      break;
    case 'errorAfter':
      if (!count(f.tokens)) return 'fault.tokens must be a non-negative integer';
      break;
    case 'stall':
    case 'truncate':
      if (!count(f.afterTokens)) return 'fault.afterTokens must be a non-negative integer';
      break;
    default:
      return 'fault.kind must be one of refuse, status, errorAfter, stall, truncate';
  }
  if (r.model !== undefined && typeof r.model !== 'string') return 'model must be a string';
  if (r.path !== undefined && typeof r.path !== 'string') return 'path must be a string';
  if (r.times !== undefined && !(count(r.times) && r.times > 0)) return 'times must be a positive integer';
  return undefined;
}

export class FaultBook {
  private rules: FaultRule[] = [];

  add(rule: FaultRule): void {
    const err = validateRule(rule);
    if (err) throw new TypeError(err);
    this.rules.push({ ...rule, fault: { ...rule.fault } });
  }

  clear(): void {
    this.rules = [];
  }

  /** Find and consume the fault for a request, if any. `model` is the name as sent (model or name key). */
  take(path: string, model: string | undefined): Fault | undefined {
    const idx = this.rules.findIndex((r) => {
      if (r.path !== undefined && normalizePath(r.path) !== path) return false;
      if (r.model !== undefined && (model === undefined || nameKey(r.model) !== nameKey(model))) return false;
      return true;
    });
    if (idx < 0) return undefined;
    const rule = this.rules[idx];
    if (rule.times !== undefined) {
      rule.times -= 1;
      if (rule.times <= 0) this.rules.splice(idx, 1);
    }
    return rule.fault;
  }
}

function normalizePath(p: string): string {
  return p.startsWith('/') ? p : `/${p}`;
}
