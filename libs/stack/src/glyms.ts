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

const SEED_CLIENTES = [
  ['Comercial Andina S.A.C.', '20512345678', 'compras@andina.example', '+51 1 555 0101', 1, 1],
  ['Distribuidora Los Olivos E.I.R.L.', '20598765432', 'ventas@olivos.example', '+51 1 555 0102', 1, 2],
  ['Clínica San Martín', '20456789123', 'admin@sanmartin.example', '+51 1 555 0103', 2, 1],
];
const SEED_SERVICIOS = [
  ['SRV-001', 'Consulta general', '120.00', 1],
  ['SRV-002', 'Análisis de laboratorio', '85.50', 2],
  ['SRV-003', 'Radiografía digital', '210.00', 2],
  ['SRV-004', 'Mantenimiento preventivo', '350.00', 3],
];

/** Creates the demo schema and, when the tables are empty, a few rows. Idempotent. */
export async function ensureGlymsDemo(url: string): Promise<{ clientes: number; servicios: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(GLYMS_SCHEMA);
    const count = async (table: string) => Number((await client.query(`select count(*)::int as n from ${table}`)).rows[0].n);
    if ((await count('public.cliente')) === 0) {
      for (const row of SEED_CLIENTES) {
        await client.query('insert into public.cliente (razon_social, ruc, email, telefono, idclientetipo, idtipot) values ($1, $2, $3, $4, $5, $6)', row);
      }
    }
    if ((await count('public.servicio')) === 0) {
      for (const row of SEED_SERVICIOS) await client.query('insert into public.servicio (codigo, nombre, precio, id_seccion) values ($1, $2, $3, $4)', row);
    }
    return { clientes: await count('public.cliente'), servicios: await count('public.servicio') };
  } finally {
    await client.end();
  }
}
