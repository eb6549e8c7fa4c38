import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const outDir = execFileSync('bash', [join(root, 'scripts', 'build-hold.sh')], { encoding: 'utf8' }).trim();

/** ELF machine field (e_machine, offset 18) and whether a PT_INTERP program header exists. */
function elfFacts(path: string): { machine: number; dynamic: boolean } {
  const elf = readFileSync(path);
  expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  let dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const type = elf.readUInt32LE(phoff + i * phentsize);
    if (type === 3 /* PT_INTERP */) dynamic = true;
  }
  return { machine: elf.readUInt16LE(18), dynamic };
}

/** Resolves once the process has a SIGTERM handler installed (bit 15 of SigCgt in /proc). */
async function handlerInstalled(pid: number): Promise<void> {
  for (;;) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const caught = BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
    if (caught & (1n << 14n)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('hold binary', () => {
  it.each([
    ['amd64', 62 /* EM_X86_64 */],
    ['arm64', 183 /* EM_AARCH64 */],
  ])('%s is static, for its architecture, and under 1 MiB', (arch, machine) => {
    const path = join(outDir, `hold-${arch}`);
    expect(statSync(path).size).toBeLessThan(1024 * 1024);
    expect(elfFacts(path)).toEqual({ machine, dynamic: false });
  });

  it('waits until SIGTERM and then exits 0', async () => {
    const child = spawn(join(outDir, 'hold-amd64'), [], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('spawn', resolve));
    await handlerInstalled(child.pid!);
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
  });

  it('install copies itself into a directory with mode 0555', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hold-install-'));
    execFileSync(join(outDir, 'hold-amd64'), ['install', dir]);
    const copy = join(dir, 'hold');
    expect(statSync(copy).mode & 0o777).toBe(0o555);
    expect(readFileSync(copy).equals(readFileSync(join(outDir, 'hold-amd64')))).toBe(true);
  });

  it('install reports a missing directory with a message and exit code 1', () => {
    let stderr = '';
    let status = 0;
    try {
      execFileSync(join(outDir, 'hold-amd64'), ['install', '/nonexistent/dir'], { stdio: 'pipe' });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      status = e.status;
      stderr = e.stderr.toString();
    }
    expect(status).toBe(1);
    expect(stderr).toContain('hold: create /nonexistent/dir/.hold.tmp');
  });

  it('rejects unknown arguments with usage and exit code 2', () => {
    let status = 0;
    try {
      execFileSync(join(outDir, 'hold-amd64'), ['bogus'], { stdio: 'pipe' });
    } catch (err) {
      status = (err as { status: number }).status;
    }
    expect(status).toBe(2);
  });

  it('the arm64 build runs (under qemu-user) and installs itself', () => {
    const qemu = '/usr/bin/qemu-aarch64-static';
    expect(existsSync(qemu), 'qemu-user-static is installed by test/harness/prepare.sh').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'hold-arm64-'));
    execFileSync(qemu, [join(outDir, 'hold-arm64'), 'install', dir]);
    expect(elfFacts(join(dir, 'hold')).machine).toBe(183);
  });
});
