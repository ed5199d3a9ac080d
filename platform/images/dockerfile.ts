// Reading a Dockerfile the way platform/images replays it: its stages, each with its WORKDIR, ENV, USER,
// exec-form CMD, EXPOSE and its COPY and RUN steps in order. Only what can be replayed faithfully is
// accepted; anything else (ADD, ARG, ENTRYPOINT, shell-form CMD, COPY --chown) fails loudly instead of
// being skipped, so an image proved by the replay is the image Docker would build.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DockerfileParser, type Copy, type Env, type From, type Instruction } from 'dockerfile-ast';

export type Step = { kind: 'copy'; from: string | undefined; sources: string[]; dest: string; line: number } | { kind: 'run'; command: string; line: number };

export interface Stage {
  index: number;
  name: string | undefined;
  /** The FROM image, e.g. node:24.21.0-bookworm-slim. */
  image: string;
  /** WORKDIR as it stands at the end of the stage (absolute, container path). */
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  cmd: string[] | undefined;
  expose: string[];
  /** COPY and RUN steps in order, each with its WORKDIR resolved. */
  steps: Array<Step & { workdir: string }>;
}

/** Parses a Dockerfile into its stages; throws on any instruction this module cannot replay. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    if (keyword === 'FROM') {
      const from = instruction as From;
      const image = from.getImage();
      if (!image) throw new Error(`line ${line}: FROM without an image`);
      stages.push({
        index: stages.length,
        name: from.getBuildStage() ?? undefined,
        image,
        workdir: '/',
        env: {},
        user: undefined,
        cmd: undefined,
        expose: [],
        steps: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`line ${line}: ${keyword} before the first FROM`);
    switch (keyword) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args(instruction).join(' '));
        break;
      case 'ENV':
        for (const property of (instruction as Env).getProperties()) stage.env[property.getName()] = property.getValue() ?? '';
        break;
      case 'USER':
        stage.user = args(instruction).join(' ');
        break;
      case 'EXPOSE':
        stage.expose.push(...args(instruction));
        break;
      case 'CMD':
        stage.cmd = jsonForm(instruction, line);
        break;
      case 'COPY': {
        const copy = instruction as Copy;
        for (const flag of copy.getFlags()) {
          if (flag.getName() !== 'from') throw new Error(`line ${line}: COPY --${flag.getName()} is not replayed`);
        }
        const parts = (args(instruction)[0] ?? '').startsWith('[') ? jsonForm(instruction, line) : args(instruction);
        if (parts.length < 2) throw new Error(`line ${line}: COPY needs a source and a destination`);
        const dest = parts.at(-1)!;
        stage.steps.push({
          kind: 'copy',
          from: copy.getFromFlag()?.getValue() ?? undefined,
          sources: parts.slice(0, -1),
          dest,
          line,
          workdir: stage.workdir,
        });
        break;
      }
      case 'RUN':
        stage.steps.push({ kind: 'run', command: args(instruction).join(' '), line, workdir: stage.workdir });
        break;
      case 'LABEL':
      case 'STOPSIGNAL':
        break;
      default:
        throw new Error(`line ${line}: ${keyword} is not replayed by platform/images`);
    }
  }
  if (stages.length === 0) throw new Error('no FROM in the Dockerfile');
  return stages;
}

function args(instruction: Instruction): string[] {
  return instruction.getArguments().map((a) => a.getValue());
}

/** The JSON (exec) form's strings; dockerfile-ast's own JSON strings drop spaces inside values. */
function jsonForm(instruction: Instruction, line: number): string[] {
  const content = instruction.getArgumentsContent() ?? '';
  const start = content.indexOf('[');
  try {
    const parsed: unknown = JSON.parse(content.slice(start));
    if (start >= 0 && Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) return parsed;
  } catch {
    // reported below
  }
  throw new Error(`line ${line}: ${instruction.getKeyword()} must use the JSON (exec) form, e.g. ["node", "server.js"]`);
}

/** Reads the Dockerfile at `dockerfile`; its last stage is what a container of the image starts as. */
export async function readDockerfile(dockerfile: string): Promise<{ stages: Stage[]; final: Stage }> {
  const stages = parseDockerfile(await readFile(dockerfile, 'utf8'));
  const final = stages.at(-1);
  if (!final) throw new Error(`${dockerfile} has no FROM`);
  return { stages, final };
}
