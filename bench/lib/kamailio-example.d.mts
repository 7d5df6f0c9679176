// Types for kamailio-example.mjs.

export declare const BASIC_KEMI_SCRIPT_NAME: string;

/** The kamailio .deb in cacheDir, downloaded with `apt-get download kamailio` when none is cached. */
export declare function downloadKamailioPackage(cacheDir?: string): string;

export interface BasicKemiScript {
  /** Absolute path of the unmodified kamailio-basic-kemi-jsdt.js. */
  readonly script: string;
  /** The .deb it was unpacked from. */
  readonly packageFile: string;
  /** The package version, e.g. "5.6.3-2". */
  readonly version: string;
}

export declare function obtainBasicKemiScript(options?: { cacheDir?: string }): BasicKemiScript;
