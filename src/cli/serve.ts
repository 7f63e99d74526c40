// `diffactor serve [DIR...]`: the live run dashboard (src/serve/) for run directories and study
// folders, on 127.0.0.1 unless --host says otherwise; prints the URL and serves until Ctrl-C.
import { serve } from '../serve/server.ts';

export interface ServeCliOptions { port: number; host: string }

export async function serveCli(dirs: string[], o: ServeCliOptions): Promise<void> {
  const s = await serve({ dirs: dirs.length ? dirs : ['runs'], port: o.port, host: o.host });
  console.log(`diffactor serve: ${s.url}  (${(dirs.length ? dirs : ['runs']).join(', ')}; read-only; Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); void s.close().then(resolve); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
