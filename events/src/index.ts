// The event contracts shared by every producer and consumer in promsnap.
export * from './ping.js';
export * from './snapshot-stored.js';
export * from './dead-letter.js';
export * from './receive.js';
export * from './header-encoding.js';
export { EventValidationError, type Validated } from './validation.js';
