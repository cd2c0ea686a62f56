import { BeforeInsert, BeforeUpdate, CreateDateColumn, UpdateDateColumn } from 'typeorm';

/**
 * The `created_at` column, defined once for the entities that extend it (TypeORM takes the
 * columns and listeners of an entity's base classes). Stamped on insert unless the caller set it.
 */
export abstract class WithCreatedAt {
  @CreateDateColumn({ type: Date, name: 'created_at' })
  createdAt!: Date;

  @BeforeInsert()
  protected stampCreatedAt(): void {
    this.createdAt ??= new Date();
  }
}

/** `created_at` and `updated_at`: `updated_at` starts equal to `created_at` and moves on every save that changes the row. */
export abstract class WithTimestamps extends WithCreatedAt {
  @UpdateDateColumn({ type: Date, name: 'updated_at' })
  updatedAt!: Date;

  // Sets createdAt too: TypeORM runs the base class's listener in no promised order relative to this one.
  @BeforeInsert()
  protected stampUpdatedAt(): void {
    this.updatedAt ??= this.createdAt ??= new Date();
  }

  @BeforeUpdate()
  protected touch(): void {
    this.updatedAt = new Date();
  }
}
