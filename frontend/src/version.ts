export const APP_VERSION: string = __APP_VERSION__;

/** What the footer shows: `v0.1.0`. */
export function footerText(version: string = APP_VERSION): string {
  return `v${version}`;
}
