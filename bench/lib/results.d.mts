export const ROOT: string;
export const RESULTS_FILE: string;
export function machine(): {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  commit: string;
  date: string;
};
export function writeSection(name: 'load' | 'meter', markdown: string, file?: string): string;
export function writeMeterRun(markdown: string, report: unknown): string;
