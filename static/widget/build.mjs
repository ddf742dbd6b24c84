// Builds the widget into voice_widget/static/voice_widget/ (committed, so Python-only users
// never need npm). Reproducible: no timestamps, no absolute paths, stable chunk names.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, process.env.VOICE_WIDGET_OUTDIR || '../../voice_widget/static/voice_widget');

// Only what this build writes: voice_widget/static/voice_widget/admin/ (the persona admin's
// script and stylesheet) lives beside the bundle and is not built.
for (const output of ['voice-widget.js', 'chunks']) {
  rmSync(resolve(outdir, output), { recursive: true, force: true });
}

/** `import CSS from './widget.css'` gives the minified stylesheet as a string. */
const cssAsText = {
  name: 'css-as-text',
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = readFileSync(args.path, 'utf8');
      const { code } = await esbuild.transform(source, { loader: 'css', minify: true });
      return { contents: code.trim(), loader: 'text' };
    });
  },
};

await esbuild.build({
  absWorkingDir: here,
  entryPoints: ['src/voice-widget.js'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'safari15', 'chrome100', 'firefox100'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  define: { 'process.env.NODE_ENV': '"production"' },
  plugins: [cssAsText],
  logLevel: 'warning',
});
