//! The PostgreSQL backend: a small pool of synchronous clients.

use std::error::Error as StdError;
use std::sync::Mutex;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};

use crate::StoreError;
use crate::backend::{Backend, Conn, Dialect, Row, SqlValue, numbered_placeholders};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

/// A PostgreSQL database.
pub struct Postgres {
    uri: String,
    idle: Mutex<Vec<Client>>,
}

impl Postgres {
    /// Connects to `postgresql://…` (or `postgres://…`) and checks the connection.
    pub fn open(uri: &str) -> Result<Self, StoreError> {
        let pg = Postgres {
            uri: uri.to_string(),
            idle: Mutex::new(Vec::new()),
        };
        let client = pg.client()?;
        pg.release(client);
        Ok(pg)
    }

    /// A fresh client outside the pool, for session-level work such as advisory locks.
    pub fn client(&self) -> Result<Client, StoreError> {
        if let Some(c) = self.idle.lock().expect("pool poisoned").pop()
            && !c.is_closed()
        {
            return Ok(c);
        }
        Ok(Client::connect(&self.uri, NoTls)?)
    }

    /// Returns a client to the pool.
    pub fn release(&self, client: Client) {
        let mut idle = self.idle.lock().expect("pool poisoned");
        if idle.len() < MAX_IDLE && !client.is_closed() {
            idle.push(client);
        }
    }

    fn in_tx<T>(
        &self,
        read_only: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client()?;
        let out = (|| {
            let mut tx = client.transaction()?;
            if read_only {
                tx.batch_execute("SET TRANSACTION READ ONLY")?;
            }
            let v = f(&mut PgConn(&mut tx))?;
            tx.commit()?;
            Ok(v)
        })();
        self.release(client);
        out
    }
}

impl Backend for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.in_tx(true, f)
    }
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.in_tx(false, f)
    }
}

struct PgConn<'a, 'b>(&'a mut postgres::Transaction<'b>);

fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, values: &[SqlValue]) -> Result<u64, StoreError> {
        Ok(self
            .0
            .execute(numbered_placeholders(sql).as_str(), &params(values))?)
    }

    fn exec_many(&mut self, sql: &str, rows: &[Vec<SqlValue>]) -> Result<u64, StoreError> {
        let stmt = self.0.prepare(&numbered_placeholders(sql))?;
        let mut n = 0;
        for row in rows {
            n += self.0.execute(&stmt, &params(row))?;
        }
        Ok(n)
    }

    fn query(&mut self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .0
            .query(numbered_placeholders(sql).as_str(), &params(values))?;
        rows.iter().map(decode_row).collect()
    }
}

fn decode_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.into()
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(i64::from).into()
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(i64::from).into()
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(i64::from).into()
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.into()
        } else if *t == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)?.map(f64::from).into()
        } else {
            row.try_get::<_, Option<String>>(i)?.into()
        };
        out.push(v);
    }
    Ok(out)
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            SqlValue::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            SqlValue::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
