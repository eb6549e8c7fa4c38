import { describe, expect, it } from 'vitest';
import {
  buildahConfigArgs,
  imageNodeEnv,
  imageNodeFlags,
  layerSource,
  parseImageRecipe,
  readImageRecipe,
} from './image-recipe.ts';

const FINAL_STAGE = `FROM golang AS parts
RUN make parts

FROM scratch
ARG TARGETARCH
# a comment
COPY --from=parts /parts/\${TARGETARCH}/base/ /
COPY --from=parts --chown=65532:65532 /parts/home/nonroot/ /home/nonroot/
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /app
ENTRYPOINT ["node", \\
  "--flag", "/app/prepull.mjs"]
CMD ["run"]
`;

describe('parseImageRecipe', () => {
  it('reads the final stage: layers with their owners, env, user, working dir, entrypoint, command', () => {
    const recipe = parseImageRecipe(FINAL_STAGE);
    expect(recipe).toEqual({
      layers: [
        { source: `/parts/\${TARGETARCH}/base/`, destination: '/', owner: { uid: 0, gid: 0 } },
        { source: '/parts/home/nonroot/', destination: '/home/nonroot/', owner: { uid: 65532, gid: 65532 } },
      ],
      env: { PATH: '/usr/local/bin' },
      user: '65532:65532',
      workingDir: '/app',
      entrypoint: ['node', '--flag', '/app/prepull.mjs'],
      cmd: ['run'],
    });
    expect(layerSource(recipe.layers[0]!, 'arm64')).toBe('/parts/arm64/base/');
    expect(buildahConfigArgs(recipe)).toEqual([
      '--env',
      'PATH=/usr/local/bin',
      '--user',
      '65532:65532',
      '--workingdir',
      '/app',
      '--entrypoint',
      '["node","--flag","/app/prepull.mjs"]',
      '--cmd',
      '["run"]',
    ]);
  });

  it.each([
    ['a final stage from a base image', 'FROM debian\nUSER 1'],
    ['a RUN step, which buildah would not run', 'FROM scratch\nRUN true'],
    ['a COPY from the build context', 'FROM scratch\nCOPY dist/ /app/'],
    ['a named --chown', 'FROM scratch\nCOPY --from=parts --chown=nonroot /parts/x/ /x/'],
    ['a shell-form ENTRYPOINT', 'FROM scratch\nENTRYPOINT node /app/prepull.mjs'],
  ])('rejects %s', (_, text) => {
    expect(() => parseImageRecipe(text)).toThrowError(/Dockerfile/);
  });
});

describe('the repository Dockerfile', () => {
  it('is a recipe build-image.sh can build, with Node flags before the bundle', () => {
    const recipe = readImageRecipe();
    expect(recipe.user).toBe('65532:65532');
    expect(recipe.layers.length).toBeGreaterThan(0);
    expect(imageNodeFlags().every((f) => f.startsWith('--'))).toBe(true);
  });

  it("gives the benchmarks and tests the image's environment for Node, but its PATH", () => {
    const { PATH, ...rest } = readImageRecipe().env;
    expect(PATH).toBeDefined();
    expect(imageNodeEnv()).toEqual(rest);
    // Two malloc arenas: a fresh operator at 5000 nodes and 100 PrePulledImages holds 9 MiB less.
    expect(imageNodeEnv()).toMatchObject({ MALLOC_ARENA_MAX: '2' });
  });
});
