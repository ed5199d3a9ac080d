// ESLint for the whole repository (npm run lint; npm test runs it first): JavaScript's recommended
// rules and typescript-eslint's type-aware ones, which catch promises nobody awaits or handles and values
// of type any flowing into typed code. Formatting is Prettier's (npm run format), not a lint rule.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.promsnap/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test runs and reports top-level tests itself; awaiting them is not the idiom. Subtests and
      // every other promise must still be awaited or handled.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      // A variable assigned once but read earlier, by a closure (a readiness callback before its server exists), stays let:
      // const would throw in the temporal dead zone if the closure ran first.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // A name starting with _ is deliberately unused (a field left out of a rest, an ignored argument).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
);
