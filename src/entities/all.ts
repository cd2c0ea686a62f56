import { ApiKey } from './api-key.js';
import { Generation } from './generation.js';
import { Lease } from './lease.js';
import { Message } from './message.js';
import { ModelEntry } from './model-entry.js';
import { Session } from './session.js';
import { Setting } from './setting.js';

export const entities = [ApiKey, ModelEntry, Session, Message, Generation, Setting, Lease];
