/** Call a KEMI function of a module table by name, as the bridge would (arguments already typed). */
import type { KemiModule, KemiValue } from "../../host/modules/types.js";
import type { MessageContext } from "../../host/core/context.js";

export function caller(mod: KemiModule) {
  return (name: string, ctx: MessageContext, ...args: (string | number)[]): KemiValue => {
    const fn = mod.functions[name];
    if (fn === undefined) throw new Error(`${mod.name}.${name} is not exported`);
    if (args.length !== fn.params.length) throw new Error(`${mod.name}.${name} takes ${fn.params.length} args`);
    return fn.run(ctx, ...args);
  };
}
