// Kubeconfig files for a control plane: one cluster, one user (a bearer token), one context. The server's
// certificate is verified against the CA given (tls-server-name when the URL's host is not in the
// certificate: a forwarded loopback port), never skipped.

export interface KubeconfigSpec {
  /** Context and cluster name. */
  name: string;
  server: string;
  caPem: string;
  /** Name the server's certificate is checked against instead of the URL's host. */
  tlsServerName?: string;
  user: string;
  token: string;
}

export function renderKubeconfig(spec: KubeconfigSpec): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${spec.name}`,
    '  cluster:',
    `    server: ${spec.server}`,
    `    certificate-authority-data: ${Buffer.from(spec.caPem).toString('base64')}`,
    ...(spec.tlsServerName ? [`    tls-server-name: ${spec.tlsServerName}`] : []),
    'users:',
    `- name: ${JSON.stringify(spec.user)}`,
    '  user:',
    `    token: ${spec.token}`,
    'contexts:',
    `- name: ${spec.name}`,
    '  context:',
    `    cluster: ${spec.name}`,
    `    user: ${JSON.stringify(spec.user)}`,
    `current-context: ${spec.name}`,
    '',
  ].join('\n');
}
