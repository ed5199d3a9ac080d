// The one reader of the rendered platform, by subject: rendering (render.ts), finding objects
// (objects.ts), pods and containers (pods.ts), service accounts (rbac.ts), Prometheus (prometheus.ts),
// Knative Eventing (destination.ts, eventing.ts) and its delivery arithmetic (delivery.ts), Knative Serving
// (serving.ts), Services and addresses (services.ts). Every derivation reads what is rendered, never a
// copy of it, and fails with a message naming what is missing. Apart from renderPlatform, all pure.
export * from './render.js';
export * from './objects.js';
export * from './pods.js';
export * from './rbac.js';
export * from './prometheus.js';
export * from './destination.js';
export * from './eventing.js';
export * from './delivery.js';
export * from './serving.js';
export * from './services.js';
