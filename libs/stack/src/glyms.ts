import pg from 'pg';

/** The demo Glyms ERP schema of DESIGN.md, with the trigger-era change-log table for `logtable` mode. */
export const GLYMS_SCHEMA = `
create table if not exists public.cliente (
  id_cliente serial primary key,
  razon_social text not null,
  ruc text,
  email text,
  telefono text,
  idclientetipo int,
  idtipot int,
  activo boolean default true,
  updated_at timestamptz default now()
);
create table if not exists public.servicio (
  id_servicio serial primary key,
  codigo text unique,
  nombre text not null,
  precio numeric(12,2) not null,
  id_seccion int,
  activo boolean default true
);
create schema if not exists f_cliente;
create table if not exists f_cliente.sync_log_bitrix24 (
  log_id serial primary key,
  id_cliente int not null,
  operation_type varchar(10) not null,
  change_timestamp timestamptz default now(),
  sync_status varchar(20) default 'PENDING',
  processed_timestamp timestamptz,
  error_message text
);
`;

const SEED_CLIENTES: (string | number)[][] = [
  ['Comercial Andina S.A.C.', '20512345678', 'compras@andina.example', '+51 1 555 0101', 1, 1],
  ['Distribuidora Los Olivos E.I.R.L.', '20598765432', 'ventas@olivos.example', '+51 1 555 0102', 1, 2],
  ['Clínica San Martín', '20456789123', 'admin@sanmartin.example', '+51 1 555 0103', 2, 1],
];
const SEED_SERVICIOS: (string | number)[][] = [
  ['SRV-001', 'Consulta general', '120.00', 1],
  ['SRV-002', 'Análisis de laboratorio', '85.50', 2],
  ['SRV-003', 'Radiografía digital', '210.00', 2],
  ['SRV-004', 'Mantenimiento preventivo', '350.00', 3],
];

const literal = (value: string | number) =>
  typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
const rows = (list: (string | number)[][]) => list.map((row) => `  (${row.map(literal).join(', ')})`).join(',\n');

/**
 * The demo schema and, when its tables are empty, a few rows: one idempotent SQL script. `npm start`
 * runs it; `deploy/k8s/overlays/dev/glyms-demo.sql` (compose and the dev overlay) is this text, which a
 * test keeps equal.
 */
export function glymsDemoSql(): string {
  return `-- The Glyms ERP demo schema and seed rows (generated from libs/stack/src/glyms.ts: glymsDemoSql).
${GLYMS_SCHEMA.trim()}

insert into public.cliente (razon_social, ruc, email, telefono, idclientetipo, idtipot)
select * from (values
${rows(SEED_CLIENTES)}
) as seed (razon_social, ruc, email, telefono, idclientetipo, idtipot)
where not exists (select 1 from public.cliente);

insert into public.servicio (codigo, nombre, precio, id_seccion)
select codigo, nombre, precio::numeric, id_seccion from (values
${rows(SEED_SERVICIOS)}
) as seed (codigo, nombre, precio, id_seccion)
where not exists (select 1 from public.servicio);
`;
}

/** Creates the demo schema and, when the tables are empty, a few rows. Idempotent. */
export async function ensureGlymsDemo(url: string): Promise<{ clientes: number; servicios: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(glymsDemoSql());
    const count = async (table: string) =>
      Number((await client.query(`select count(*)::int as n from ${table}`)).rows[0].n);
    return { clientes: await count('public.cliente'), servicios: await count('public.servicio') };
  } finally {
    await client.end();
  }
}
