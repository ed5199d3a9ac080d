// The Prometheus configuration exactly as the pod gets it: prometheus.yml and the rule files taken from
// the rendered, generated ConfigMap (through the Deployment's --config.file and volume mounts), checked
// by the pinned promtool, and every alert's unit tests (platform/monitoring/tests) run against the
// rendered rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runCommand } from '../tools/command.js';
import { findTool } from '../tools/find.js';
import { findObject, podTemplates, prometheusSetup, renderPlatform, type PrometheusSetup } from '../manifests/index.js';
import { toolDir, versions } from '../tools/versions.js';

const ruleTestsFile = fileURLToPath(new URL('../monitoring/tests/promsnap.rules.test.yml', import.meta.url));
/** Where the kubelet mounts a pod's service-account token, CA and namespace. */
const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await runCommand(findTool('promtool'), args, { allowFailure: true });
  return { code, output: stdout + stderr };
}

/** Every file path a scrape job reads (tokens, CAs, client certificates). */
function filesNamed(job: Record<string, unknown>): string[] {
  const files: string[] = [];
  const tls = (t: unknown) => {
    for (const key of ['ca_file', 'cert_file', 'key_file']) {
      const value = (t as Record<string, unknown> | undefined)?.[key];
      if (typeof value === 'string') files.push(value);
    }
  };
  tls(job['tls_config']);
  const auth = job['authorization'] as Record<string, unknown> | undefined;
  if (typeof auth?.['credentials_file'] === 'string') files.push(auth['credentials_file']);
  if (typeof job['bearer_token_file'] === 'string') files.push(job['bearer_token_file']);
  for (const sd of (job['kubernetes_sd_configs'] ?? []) as Array<Record<string, unknown>>) tls(sd['tls_config']);
  return files;
}

/**
 * The ConfigMap's files written to a folder laid out as the pod's mount, with the service-account files
 * (which only a pod has) pointed at stand-ins, so promtool checks everything else about them.
 */
async function writeMount(setup: PrometheusSetup, dir: string): Promise<{ configFile: string; mountDir: string }> {
  const mountDir = path.join(dir, 'mount');
  const saDir = path.join(dir, 'serviceaccount');
  await mkdir(mountDir, { recursive: true });
  await mkdir(saDir, { recursive: true });
  for (const [key, value] of Object.entries(setup.files)) await writeFile(path.join(mountDir, key), value);
  for (const name of ['token', 'ca.crt', 'namespace']) await writeFile(path.join(saDir, name), 'stand-in\n');
  const config = structuredClone(setup.config);
  const localise = (value: unknown): unknown => {
    if (typeof value === 'string' && value.startsWith(`${serviceAccountDir}/`)) return path.join(saDir, value.slice(serviceAccountDir.length + 1));
    if (Array.isArray(value)) return value.map(localise);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, localise(v)]));
    return value;
  };
  const configFile = path.join(mountDir, path.posix.basename(setup.configPath));
  await writeFile(configFile, stringifyYaml(localise(config)));
  return { configFile, mountDir };
}

test('prometheus.yml and the alert rules from the rendered ConfigMap', async (t) => {
  const { objects } = await renderPlatform();
  const setup = prometheusSetup(objects);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-prometheus-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { configFile, mountDir } = await writeMount(setup, dir);

  await t.test(`the image and the tests' promtool are both Prometheus ${versions.prometheus} (platform/tools/versions.env)`, () => {
    assert.equal(setup.image, `quay.io/prometheus/prometheus:v${versions.prometheus}`);
    // A `go install` build reports no version of its own; the pinned one is known by where it lives.
    assert.equal(path.dirname(path.dirname(findTool('promtool'))), toolDir('prometheus'));
  });

  await t.test('the ConfigMap is generated (name with a content hash), so a change rolls the Deployment', () => {
    assert.match(setup.configMap, /^prometheus-config-[a-z0-9]{10}$/);
    const configMap = findObject(objects, 'ConfigMap', setup.configMap, 'monitoring');
    assert.deepEqual(Object.keys(configMap['data'] as object).sort(), ['prometheus.yml', 'promsnap.rules.yml']);
  });

  await t.test('promtool check config accepts it, rule files included', async () => {
    const result = await promtool('check', 'config', configFile);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
    assert.match(result.output, /SUCCESS: \d+ rules found/);
  });

  await t.test('the check can fail: a misspelled field in the same configuration is refused', async () => {
    const broken = path.join(dir, 'broken.yml');
    await writeFile(broken, (await readFile(configFile, 'utf8')).replace('scrape_interval:', 'scrape_intervall:'));
    const result = await promtool('check', 'config', broken);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /field scrape_intervall not found/);
  });

  await t.test('the files the scrape jobs read are the service-account token and CA the pod mounts', () => {
    const template = podTemplates([findObject(objects, 'Deployment', setup.deployment, setup.namespace)])[0]!;
    const account = findObject(objects, 'ServiceAccount', template.spec.serviceAccountName ?? 'default', setup.namespace);
    assert.notEqual(template.spec.automountServiceAccountToken ?? account['automountServiceAccountToken'] ?? true, false, 'the token is mounted');
    const files = (setup.config.scrape_configs ?? []).flatMap(filesNamed);
    assert.ok(files.length > 0);
    for (const file of files) assert.ok([`${serviceAccountDir}/token`, `${serviceAccountDir}/ca.crt`].includes(file), file);
  });

  await t.test('the scrape jobs are the seven the platform promises, and pod and endpoint jobs label namespace and pod', () => {
    const jobs = setup.config.scrape_configs ?? [];
    assert.deepEqual(jobs.map((j) => j.job_name).sort(), [
      'kube-state-metrics',
      'kubernetes-apiservers',
      'kubernetes-cadvisor',
      'kubernetes-nodes',
      'kubernetes-pods',
      'kubernetes-service-endpoints',
      'prometheus',
    ]);
    for (const name of ['kubernetes-pods', 'kubernetes-service-endpoints']) {
      const rules = (jobs.find((j) => j.job_name === name)!['relabel_configs'] ?? []) as Array<{ source_labels?: string[]; target_label?: string }>;
      const targets = rules.map((r) => `${r.source_labels?.join(',')}->${r.target_label}`);
      assert.ok(targets.includes('__meta_kubernetes_namespace->kubernetes_namespace'), `${name}: ${targets.join(' ')}`);
      assert.ok(targets.includes('__meta_kubernetes_pod_name->kubernetes_pod_name'), `${name}: ${targets.join(' ')}`);
    }
  });

  await t.test('promtool check rules accepts each rule file prometheus.yml loads', async () => {
    assert.ok(setup.ruleFiles.length > 0, 'prometheus.yml loads rule files');
    for (const file of setup.ruleFiles) {
      const result = await promtool('check', 'rules', path.join(mountDir, file.key));
      assert.equal(result.code, 0, result.output);
    }
  });

  const ruleTests = parseYaml(await readFile(ruleTestsFile, 'utf8')) as {
    rule_files: string[];
    tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
  };
  const alerts = setup.ruleFiles.flatMap((file) =>
    ((parseYaml(file.text) as { groups: Array<{ rules: Array<{ alert?: string }> }> }).groups ?? []).flatMap((g) =>
      g.rules.flatMap((r) => (r.alert ? [r.alert] : [])),
    ),
  );

  await t.test('every alert has unit tests showing when it fires and when it does not', () => {
    assert.ok(alerts.length >= 5, `alerts: ${alerts.join(', ')}`);
    const cases = ruleTests.tests.flatMap((c) => c.alert_rule_test ?? []);
    const missing = alerts.flatMap((alert) => {
      const mine = cases.filter((c) => c.alertname === alert);
      return [
        ...(mine.some((c) => (c.exp_alerts ?? []).length > 0) ? [] : [`${alert}: no case where it fires`]),
        ...(mine.some((c) => (c.exp_alerts ?? []).length === 0) ? [] : [`${alert}: no case where it stays silent`]),
      ];
    });
    assert.deepEqual(missing, []);
    const unknown = [...new Set(cases.map((c) => c.alertname))].filter((name) => !alerts.includes(name));
    assert.deepEqual(unknown, [], 'tests name alerts the rules do not define');
  });

  await t.test('promtool test rules passes against the rendered rules', async () => {
    // The test file's rule_files, pointed at the rendered copies of the same files.
    const rendered = new Map(setup.ruleFiles.map((f) => [f.key, path.join(mountDir, f.key)]));
    const ruleFiles = ruleTests.rule_files.map((file) => {
      const target = rendered.get(path.basename(file));
      assert.ok(target, `the rule tests load ${file}, which prometheus.yml does not`);
      return target;
    });
    assert.deepEqual([...rendered.values()].sort(), [...ruleFiles].sort(), 'the tests cover every rule file prometheus.yml loads');
    const testFile = path.join(dir, 'rules.test.yml');
    await writeFile(testFile, stringifyYaml({ ...ruleTests, rule_files: ruleFiles }));
    const result = await promtool('test', 'rules', testFile);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /SUCCESS/);
  });

  await t.test('the rule tests can fail: a threshold changed in the rules breaks them', async () => {
    const file = setup.ruleFiles[0]!;
    const changed = path.join(dir, 'changed', file.key);
    await mkdir(path.dirname(changed), { recursive: true });
    assert.ok(file.text.includes('> 900'), 'SnapshotsStale compares with 900 s');
    await writeFile(changed, file.text.replace('> 900', '> 90000'));
    const testFile = path.join(dir, 'changed.test.yml');
    await writeFile(testFile, stringifyYaml({ ...ruleTests, rule_files: [changed] }));
    const result = await promtool('test', 'rules', testFile);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /SnapshotsStale/);
  });
});
