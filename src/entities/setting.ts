import { BeforeInsert, BeforeUpdate, Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Key/value store for runtime settings (default system prompt, inactivity threshold, default model). */
@Entity({ name: 'settings' })
export class Setting {
  @PrimaryColumn({ type: 'varchar', length: 100 })
  key!: string;

  /** Any JSON value; JSON `null` is stored as SQL NULL. */
  @Column({ type: 'simple-json', nullable: true })
  value!: JsonValue;

  @UpdateDateColumn({ type: Date, name: 'updated_at' })
  updatedAt!: Date;

  @BeforeInsert()
  protected assignDefaults(): void {
    this.updatedAt ??= new Date();
  }

  @BeforeUpdate()
  protected touch(): void {
    this.updatedAt = new Date();
  }
}
